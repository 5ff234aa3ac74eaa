"""The three mailers against real local parts: a /v3/mail/send server, aiosmtpd, files."""

from __future__ import annotations

import email
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest

from newsletter.delivery.mailers.message import list_headers, reader_tag
from newsletter.delivery.mailers.outbox import OutboxMailer
from newsletter.delivery.mailers.sendgrid import SendgridMailer
from newsletter.delivery.mailers.smtp import SmtpMailer
from newsletter.edition import personalize, render
from newsletter.edition.digest import build_edition, layout
from newsletter.errors import DeliveryError
from newsletter.models import (
    Batch,
    MailKind,
    Recipient,
    RenderedEmail,
    Sector,
    SectorFit,
    Story,
    Subscriber,
)
from newsletter.text import plain_name
from tests.conftest import NOW
from tests.sendgrid_server import SendgridServer, problems, sendgrid_server
from tests.smtp_server import Inbox, start_smtp

DAY = NOW.date()


@pytest.fixture(scope="module")
def variant() -> RenderedEmail:
    story = Story(
        id="a",
        title="Crude & <gas> prices rise",
        url="https://x.example.com/a",
        summary="Brent rose above ninety dollars a barrel on Tuesday.",
        source="Wire",
        published=NOW - timedelta(hours=1),
        fits=(SectorFit("oil-gas"),),
    )
    edition = build_edition(
        [story], [Sector("oil-gas", "Oil & Gas")], publication="Briefing", edition_date=DAY, now=NOW
    )
    return render.render_email(render.make_environment(), edition, layout(edition))


def readers(n: int, start: int = 0) -> list[Recipient]:
    return [
        Recipient(
            delivery_id=i,
            reader=Subscriber(1000 + i, f"reader{i}@example.com", f"Reader {i}" if i % 2 else ""),
            values={
                "unsubscribe_url": f"https://pub.example.com/unsubscribe/t{i}?a=1&b=2",
                "preferences_url": f"https://pub.example.com/preferences/t{i}",
                "greeting": f"Good morning, <R{i}>." if i % 2 else "Good morning.",
            },
        )
        for i in range(start, start + n)
    ]


def mailer(server: SendgridServer, **kwargs: float) -> SendgridMailer:
    return SendgridMailer(
        api_key=server.api_key,
        api_host=server.url,
        from_address="Briefing <news@pub.example.com>",
        timeout=kwargs.get("timeout", 30),
        max_retries=int(kwargs.get("max_retries", 4)),
        backoff=kwargs.get("backoff", 1.0),
    )


@pytest.fixture
def sendgrid() -> Iterator[SendgridServer]:
    with sendgrid_server() as server:
        yield server


def test_sendgrid_batch_is_one_request_with_a_personalization_per_reader(
    sendgrid: SendgridServer, variant: RenderedEmail
) -> None:
    result = mailer(sendgrid).send_batch(Batch(variant, tuple(readers(1000)), 7, DAY))
    assert len(result.sent) == 1000 and not result.failed
    assert sendgrid.requests == 1
    (body,) = sendgrid.accepted
    first = body["personalizations"][1]
    assert first["to"] == [{"email": "reader1@example.com", "name": "Reader 1"}]
    assert first["custom_args"] == {"edition_id": "7", "subscriber_id": "1001"}
    assert first["headers"] == {
        "List-Unsubscribe": "<https://pub.example.com/unsubscribe/t1?a=1&b=2>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    subs = first["substitutions"]
    secret = variant.markers
    assert subs[personalize.placeholder("unsubscribe_url", secret)] == (
        "https://pub.example.com/unsubscribe/t1?a=1&amp;b=2"
    )
    assert subs[personalize.placeholder("unsubscribe_url", secret, text=True)] == (
        "https://pub.example.com/unsubscribe/t1?a=1&b=2"
    )
    assert subs[personalize.placeholder("greeting", secret)] == "Good morning, &lt;R1&gt;."
    assert subs[personalize.placeholder("greeting", secret, text=True)] == "Good morning, <R1>."
    assert body["categories"] == [f"edition-{DAY}"]
    assert body["mail_settings"] == {"sandbox_mode": {"enable": False}}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    html = body["content"][1]["value"]
    assert personalize.placeholder("unsubscribe_url", secret) in html
    assert "Crude &amp; &lt;gas&gt; prices rise" in html


def test_the_client_librarys_debug_log_never_holds_a_readers_address(
    sendgrid: SendgridServer, variant: RenderedEmail, caplog: pytest.LogCaptureFixture
) -> None:
    """The SendGrid client logs each request's headers and payload at debug level, formatted
    whether or not debug is on: the API key is masked, and the payload (every reader's address
    and links) is named by its size."""
    with caplog.at_level(logging.DEBUG, logger="python_http_client"):
        result = mailer(sendgrid).send_batch(Batch(variant, tuple(readers(3)), 7, DAY))
    assert len(result.sent) == 3
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "PAYLOAD" in logged  # the client's debug lines were captured
    assert "reader1@example.com" not in logged and "/unsubscribe/t1" not in logged
    assert "HEADERS" in logged and sendgrid.api_key not in logged


def test_the_local_server_enforces_sendgrids_limits(variant: RenderedEmail) -> None:
    with sendgrid_server() as server:
        m = mailer(server)
        body = json.loads(m.payload(Batch(variant, tuple(readers(1001)), 1, DAY)))
        assert "The total number of recipients must be at most 1000." in problems(body)
        assert any("1000 personalizations" in p for p in problems(body))
        twice = json.loads(m.payload(Batch(variant, tuple(readers(2) + readers(1)), 1, DAY)))
        assert any("unique" in p for p in problems(twice))
        del body["from"]
        assert "The from object must be provided for every email send." in problems(body)
        one = twice["personalizations"][0]
        assert not any("10000 bytes" in p for p in problems(twice))
        one["substitutions"]["%%long%%"] = "\u00e9" * 1700  # 10,200 bytes as JSON's \u00e9
        one["custom_args"] = {"n": 1, "pad": "x" * 10_000}  # not a dict of strings: measured
        over = problems(twice)
        assert "The substitutions of a personalization must be at most 10000 bytes." in over
        assert "The custom_args of a personalization must be at most 10000 bytes." in over
        with pytest.raises(ValueError, match="at most 1000"):
            m.send_batch(Batch(variant, tuple(readers(1001)), 1, DAY))
        result = m.send_batch(Batch(variant, tuple(readers(2) + readers(1)), 1, DAY))
        assert not result.sent and "must be unique" in result.failed[0]


def test_429_waits_for_the_reset_then_goes_on(
    sendgrid: SendgridServer, variant: RenderedEmail
) -> None:
    sendgrid.faults.append(("429", 2.0))
    started = time.monotonic()
    result = mailer(sendgrid).send_batch(Batch(variant, tuple(readers(3)), 1, DAY))
    assert time.monotonic() - started >= 0.9  # it waited for X-RateLimit-Reset (whole seconds)
    assert len(result.sent) == 3 and sendgrid.requests == 2


def test_5xx_is_retried_with_backoff_then_fails_the_batch(
    sendgrid: SendgridServer, variant: RenderedEmail
) -> None:
    sendgrid.faults.extend([("500", 0), ("500", 0)])
    ok = mailer(sendgrid, backoff=0.01).send_batch(Batch(variant, tuple(readers(2)), 1, DAY))
    assert len(ok.sent) == 2 and sendgrid.requests == 3
    sendgrid.faults.extend([("500", 0)] * 5)
    bad = mailer(sendgrid, backoff=0.01, max_retries=2).send_batch(
        Batch(variant, tuple(readers(2)), 1, DAY)
    )
    assert not bad.sent and bad.failed[0] == "SendGrid HTTP 500, 3 attempts"


def test_retries_back_off_exponentially_on_the_injected_sleep(
    sendgrid: SendgridServer, variant: RenderedEmail
) -> None:
    waits: list[float] = []
    retried = SendgridMailer(
        api_key=sendgrid.api_key,
        api_host=sendgrid.url,
        from_address="Briefing <news@pub.example.com>",
        max_retries=3,
        backoff=0.5,
        sleep=waits.append,  # nothing waits for real
    )
    sendgrid.faults.extend([("500", 0)] * 3)
    ok = retried.send_batch(Batch(variant, tuple(readers(1)), 1, DAY))
    assert len(ok.sent) == 1 and waits == [0.5, 1.0, 2.0]
    waits.clear()
    sendgrid.faults.extend([("500", 0)] * 4)
    bad = retried.send_batch(Batch(variant, tuple(readers(1)), 1, DAY))
    assert bad.failed[0] == "SendGrid HTTP 500, 4 attempts" and waits == [0.5, 1.0, 2.0]
    inbox = Inbox(transient=2)
    controller, port = start_smtp(inbox)
    smtp_waits: list[float] = []
    try:
        smtp = SmtpMailer(
            host="127.0.0.1",
            port=port,
            from_address="news@pub.example.com",
            backoff=0.25,
            sleep=smtp_waits.append,
        )
        result = smtp.send_batch(Batch(variant, tuple(readers(1)), 1, DAY))
        smtp.close()
    finally:
        controller.stop()
    assert len(result.sent) == 1 and smtp_waits == [0.25, 0.5]


def test_a_timeout_is_retried(sendgrid: SendgridServer, variant: RenderedEmail) -> None:
    sendgrid.faults.append(("timeout", 2.0))
    started = time.monotonic()
    result = mailer(sendgrid, timeout=0.5, backoff=0.01).send_batch(
        Batch(variant, tuple(readers(2)), 1, DAY)
    )
    assert len(result.sent) == 2 and time.monotonic() - started < 2.0


def test_400_fails_the_batch_with_sendgrids_message(
    sendgrid: SendgridServer, variant: RenderedEmail
) -> None:
    sendgrid.faults.append(("400", 0))
    result = mailer(sendgrid).send_batch(Batch(variant, tuple(readers(2)), 1, DAY))
    assert result.failed == {
        0: "SendGrid HTTP 400: forced bad request",
        1: "SendGrid HTTP 400: forced bad request",
    }


def test_401_stops_with_a_clear_error(variant: RenderedEmail) -> None:
    with sendgrid_server(api_key="SG.right") as server:
        wrong = SendgridMailer(api_key="SG.wrong", api_host=server.url, from_address="a@b.example")
        with pytest.raises(DeliveryError) as info:
            wrong.send_batch(Batch(variant, tuple(readers(1)), 1, DAY))
        assert "SendGrid refused the API key (HTTP 401)" in info.value.message
        assert info.value.hint and "api_key_env" in info.value.hint
        assert "SG.wrong" not in info.value.message + info.value.hint  # the secret is never shown


def test_sandbox_mode_for_a_dry_run(sendgrid: SendgridServer, variant: RenderedEmail) -> None:
    mailer(sendgrid).send_batch(Batch(variant, tuple(readers(1)), 1, DAY, dry_run=True))
    assert sendgrid.accepted[0]["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_smtp_sends_both_parts_and_the_list_headers(variant: RenderedEmail) -> None:
    inbox = Inbox(transient=1)
    controller, port = start_smtp(inbox)
    try:
        smtp = SmtpMailer(
            host="127.0.0.1",
            port=port,
            from_address="Briefing <news@pub.example.com>",
            backoff=0.01,
        )
        result = smtp.send_batch(Batch(variant, tuple(readers(3)), 4, DAY))
        smtp.close()
    finally:
        controller.stop()
    assert len(result.sent) == 3 and not result.failed  # the 451 was retried
    assert len(inbox.messages) == 3
    message = inbox.messages[1]
    assert message["To"] == "Reader 1 <reader1@example.com>"
    assert message["From"] == "Briefing <news@pub.example.com>"
    assert message["Message-ID"].endswith("@pub.example.com>") and message["Date"]
    assert message["List-Unsubscribe"] == "<https://pub.example.com/unsubscribe/t1?a=1&b=2>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    assert (
        "Good morning, <R1>." in text and "https://pub.example.com/unsubscribe/t1?a=1&b=2" in text
    )
    assert "Good morning, &lt;R1&gt;." in html and "%%" not in html + text


def test_outbox_writes_one_message_per_reader(tmp_path: Path, variant: RenderedEmail) -> None:
    outbox = OutboxMailer(tmp_path / "outbox", from_address="news@pub.example.com")
    result = outbox.send_batch(Batch(variant, tuple(readers(2)), 1, DAY))
    files = sorted((tmp_path / "outbox" / DAY.isoformat()).glob("*.eml"))
    assert [f.name for f in files] == ["00001000.eml", "00001001.eml"] and len(result.sent) == 2
    message = email.message_from_bytes(files[1].read_bytes(), policy=default_policy)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    dry = OutboxMailer(tmp_path / "dry", from_address="news@pub.example.com")
    dry.send_batch(Batch(variant, tuple(readers(2)), 1, DAY, dry_run=True))
    assert not (tmp_path / "dry").exists()


def test_list_id_and_tracking_settings_go_with_every_sendgrid_request(
    sendgrid: SendgridServer, variant: RenderedEmail
) -> None:
    tracked = SendgridMailer(
        api_key=sendgrid.api_key,
        api_host=sendgrid.url,
        from_address="news@pub.example.com",
        list_id='"Briefing" <briefing.pub.example.com>',
        track_clicks=True,
    )
    tracked.send_batch(Batch(variant, tuple(readers(2)), 3, DAY))
    mailer(sendgrid).send_batch(Batch(variant, tuple(readers(1)), 3, DAY))
    with_tracking, default = sendgrid.accepted
    headers = with_tracking["personalizations"][0]["headers"]
    assert headers["List-Id"] == '"Briefing" <briefing.pub.example.com>'
    assert with_tracking["tracking_settings"]["click_tracking"]["enable"] is True
    assert with_tracking["tracking_settings"]["open_tracking"] == {"enable": False}
    # off unless asked for: the readers' privacy
    assert default["tracking_settings"]["click_tracking"]["enable"] is False
    assert default["tracking_settings"]["open_tracking"] == {"enable": False}


def test_smtp_bounces_go_to_the_return_path_with_each_readers_id(variant: RenderedEmail) -> None:
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    try:
        smtp = SmtpMailer(
            host="127.0.0.1",
            port=port,
            from_address="Briefing <news@pub.example.com>",
            list_id='"Briefing" <briefing.pub.example.com>',
            return_path="bounces+{id}@pub.example.com",
            tag_key=b"the privacy key",
        )
        smtp.send_batch(Batch(variant, tuple(readers(2)), 4, DAY))
        smtp.close()
    finally:
        controller.stop()
    # each reader's id signed (a bounce naming a reader is believed only when we made it)
    tags = [reader_tag(b"the privacy key", 0, n) for n in (1000, 1001)]
    assert inbox.senders == [
        f"bounces+{n}-{t}@pub.example.com" for n, t in zip((1000, 1001), tags, strict=True)
    ]
    assert inbox.messages[0]["List-Id"] == '"Briefing" <briefing.pub.example.com>'
    assert inbox.messages[0]["From"] == "Briefing <news@pub.example.com>"


@pytest.mark.parametrize("kind", [None, MailKind.WELCOME])
def test_a_request_body_reads_back_as_the_request_sendgrid_documents(
    variant: RenderedEmail, kind: MailKind | None
) -> None:
    """The body is written as text for speed; read back it is the request, field by field."""
    m = SendgridMailer(
        api_key="SG.x", api_host="http://127.0.0.1:9", from_address="Brief <n@pub.example.com>"
    )
    m.list_id = "brief.pub.example.com"
    people = readers(3)
    zoe = Subscriber(people[1].subscriber_id, "zoe@example.com", 'Zoë "Z" <Ortiz> \u202e')
    people[1] = replace(people[1], reader=zoe)
    batch = Batch(variant, tuple(people), 7, DAY, dry_run=True, kind=kind)
    body = json.loads(m.payload(batch))
    expected_people: list[dict[str, object]] = []
    for r in people:
        ids = {"subscriber_id": str(r.subscriber_id)}
        to = {"email": r.email} | ({"name": plain_name(r.name)} if r.name else {})
        expected_people.append(
            {
                "to": [to],
                "substitutions": personalize.substitutions(variant, r.values),
                "custom_args": ids if kind else {"edition_id": "7", **ids},
                "headers": list_headers(r.values["unsubscribe_url"], "brief.pub.example.com"),
            }
        )
    assert body == {
        "personalizations": expected_people,
        "from": {"email": "n@pub.example.com", "name": "Brief"},
        "subject": variant.subject,
        "content": [
            {"type": "text/plain", "value": variant.text},
            {"type": "text/html", "value": variant.html},
        ],
        "categories": ["transactional", "welcome"] if kind else [f"edition-{DAY}"],
        "mail_settings": {"sandbox_mode": {"enable": True}},
        "tracking_settings": m.tracking,
    }
    assert body["personalizations"][1]["to"][0]["name"] == 'Zoë "Z" <Ortiz>'


@pytest.mark.parametrize("status", [401, 400])
def test_the_api_key_is_never_in_an_error_even_when_an_answer_quotes_it(
    sendgrid: SendgridServer, variant: RenderedEmail, status: int
) -> None:
    """A proxy in front of the API may quote the request's Authorization header back."""
    sendgrid.faults.append(("echo", status))
    try:
        result = mailer(sendgrid).send_batch(Batch(variant, tuple(readers(2)), 1, DAY))
        said = " ".join(result.failed.values())
    except DeliveryError as exc:
        said = f"{exc.message} {exc.hint}"
    assert "invalid grant: Bearer" in said and sendgrid.api_key not in said
