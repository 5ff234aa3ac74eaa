"""The readers' pages under a real server: one-click unsubscribe, GETs that change nothing,
hostile input, and the whole life cycle in headless Chromium."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from html import unescape
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import Channel, MailKind, Source, SubscriberStatus, SuppressionReason
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.browser import chromium
from tests.conftest import NOW, write_config
from tests.webserver import running, signed_up

WORKERS = {"outgoing-mail", "events"}  # the names of the web app's worker threads


def clock() -> datetime:
    return NOW


@dataclass
class Site:
    base: str
    config: Config
    store: Store


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url)
    app = create_app(config, store, make_mailer(config), now=clock)
    with running(app) as base:
        yield Site(base, config, store)


def confirmations(site: Site, count: int) -> list[Path]:
    """The confirmation emails in the outbox, once the queue's worker has sent ``count``."""
    folder = site.config.outbox_dir / "other"
    deadline = time.monotonic() + 10
    while len(found := sorted(folder.glob("*.eml")) if folder.is_dir() else []) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} confirmations sent"
        time.sleep(0.01)
    return found


def reader_token(site: Site, email: str = "ana@example.com") -> str:
    reader, _ = add_subscriber(site.store, email, known_sectors=site.config.sector_slugs, now=NOW)
    return reader.token


def test_one_click_unsubscribe_post_answers_200_and_a_get_changes_nothing(site: Site) -> None:
    token = reader_token(site)
    url = f"{site.base}/unsubscribe/{token}"
    page = httpx.get(url)
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert site.store.readers.subscriber_by_token(token).status == SubscriberStatus.CONFIRMED  # type: ignore[union-attr]
    for _ in range(2):
        assert httpx.get(f"{site.base}/confirm/{token}").status_code == 200
        assert httpx.get(f"{site.base}/preferences/{token}").status_code == 200
    assert site.store.readers.subscriber_by_token(token).status == SubscriberStatus.CONFIRMED  # type: ignore[union-attr]
    # As `curl -X POST -d 'List-Unsubscribe=One-Click' URL` sends it: no cookie, no CSRF token.
    done = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None and reader.status == SubscriberStatus.UNSUBSCRIBED
    kinds = [e.kind for e in site.store.readers.events_of(reader.id)]
    assert kinds == ["added", "unsubscribe"]


def test_unknown_tokens_get_a_404_page_with_the_way_on(site: Site) -> None:
    forged = "A" * 32
    for method, path in [
        ("GET", "unsubscribe"),
        ("POST", "unsubscribe"),
        ("GET", "confirm"),
        ("POST", "confirm"),
        ("GET", "preferences"),
        ("POST", "preferences"),
    ]:
        response = httpx.request(method, f"{site.base}/{path}/{forged}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "This link is not valid" in response.text  # the same page for every one
        assert 'href="/subscribe"' in response.text and 'href="/archive"' in response.text
        assert forged not in response.text


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base) as c:
        yield c


def _csrf(client: httpx.Client, path: str = "/subscribe") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"email": "a@example.com", "name": "x" * 1_000_000}, 413, "too large"),
        ({"email": "a@example.com", "name": "<script>alert(1)</script>"}, 400, "&lt; or &gt;"),
        ({"email": "a@example.com", "sectors": "crypto"}, 400, "unknown sector"),
        ({"email": "not-an-address"}, 400, "not a valid email address"),
        ({"email": "a@example.com", "name": "n" * 201}, 400, "at most 200 characters"),
        ({"email": "a@example.com", "name": "n" * 1001}, 400, "longer than 1000"),
    ],
)
def test_hostile_sign_ups_get_a_clear_4xx_and_change_nothing(
    site: Site, client: httpx.Client, fields: dict[str, str], status: int, says: str
) -> None:
    csrf = _csrf(client)
    response = client.post("/subscribe", data={"csrf": csrf, **fields})
    assert response.status_code == status and says in response.text
    assert site.store.readers.subscriber_list() == []
    assert not site.config.outbox_dir.exists()


def test_sign_up_needs_the_csrf_token_and_never_tells_who_subscribed(
    site: Site, client: httpx.Client
) -> None:
    forged = httpx.post(f"{site.base}/subscribe", data={"email": "a@example.com", "csrf": "x"})
    assert forged.status_code == 403 and site.store.readers.subscriber_list() == []
    reader_token(site, "known@example.com")
    csrf = _csrf(client)
    known = client.post("/subscribe", data={"csrf": csrf, "email": "known@example.com"})
    new = client.post("/subscribe", data={"csrf": csrf, "email": "new@example.com"})
    assert known.status_code == new.status_code == 200
    assert "Check your inbox" in known.text and known.text == new.text
    again = client.post("/subscribe", data={"csrf": csrf, "email": "new@example.com"})
    assert again.text == new.text
    # the known reader is told by email that they are subscribed, the new one asked to confirm;
    # one confirmation an hour for an address
    subjects = {}
    for path in confirmations(site, 2):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        subjects[str(message["To"])] = str(message["Subject"])
    assert subjects == {
        "known@example.com": f"You are already subscribed to {site.config.publication.name}",
        "new@example.com": f"Confirm your subscription to {site.config.publication.name}",
    }
    signed_up(site.store)  # the sign-ups before are carried out: none waits any more
    trap = client.post(
        "/subscribe",
        data={"csrf": csrf, "email": "bot@example.com", "website": "http://spam.example"},
    )
    assert trap.status_code == 200 and site.store.outgoing.queued_signups() == 0  # nothing queued
    assert site.store.readers.subscriber_by_email("bot@example.com") is None


def test_sign_ups_are_limited_per_ip(site: Site, client: httpx.Client) -> None:
    csrf = _csrf(client)
    answers = [
        client.post("/subscribe", data={"csrf": csrf, "email": f"r{i}@example.com"})
        for i in range(7)
    ]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    # the five sign-ups of the window (10 minutes) came at once: the next may come in ten
    assert answers[-1].headers["Retry-After"] == "600"
    assert "Try again in 10 minutes." in answers[-1].text


@pytest.mark.slow
def test_the_whole_life_cycle_in_a_browser(site: Site) -> None:
    with chromium() as browser:
        page = browser.new_page(timezone_id="UTC")  # the zone /zone.js fills in
        page.goto(f"{site.base}/subscribe")
        page.fill("#email", "Reader.One@Example.com")
        page.fill("#name", "Reader One")
        page.check("input[value=oil-gas]")
        page.check("input[value=ai-semiconductors]")
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "Check your inbox"
        signed_up(site.store)
        reader = site.store.readers.subscriber_by_email("reader.one@example.com")
        assert reader is not None and reader.status == SubscriberStatus.PENDING
        assert reader.sectors == ("oil-gas", "ai-semiconductors")

        (mail,) = confirmations(site, 1)
        link = re.search(r"http://localhost:8000(/confirm/[\w-]+)", mail.read_text())
        assert link is not None
        page.goto(site.base + link.group(1))  # opening the link changes nothing yet
        found = site.store.readers.subscriber_by_token(reader.token)
        assert found is not None and found.status == SubscriberStatus.PENDING
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "You are subscribed"
        found = site.store.readers.subscriber_by_token(reader.token)
        assert found is not None and found.status == SubscriberStatus.CONFIRMED
        # the welcome email: the reader's sectors and the manage link
        (welcome,) = [m for m in confirmations(site, 2) if m != mail]
        message = email.message_from_bytes(welcome.read_bytes(), policy=email.policy.default)
        assert message["Subject"] == f"Welcome to {site.config.publication.name}"
        confirm = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
        for sent in (message, confirm):  # transactional: no edition's header
            assert "X-Newsletter-Edition" not in sent and ".e0." not in sent["Message-ID"]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Oil & Gas, AI & Semiconductors" in text
        assert f"http://localhost:8000/preferences/{reader.token}" in text
        assert "Hello, Reader." in text and "Good morning" not in text  # sent at any hour

        page.goto(f"{site.base}/preferences/{reader.token}")
        page.uncheck("input[value=oil-gas]")
        page.check("input[value=esg-renewables]")
        page.click("text=Save my preferences")
        assert page.locator("h1").inner_text() == "Preferences saved"
        changed = site.store.readers.subscriber_by_token(reader.token)
        assert changed is not None and changed.sectors == ("esg-renewables", "ai-semiconductors")

        page.goto(f"{site.base}/preferences/{reader.token}")
        page.click("text=Unsubscribe from everything")
        assert page.locator("h1").inner_text() == "You are unsubscribed"
        gone = site.store.readers.subscriber_by_token(reader.token)
        assert gone is not None and gone.status == SubscriberStatus.UNSUBSCRIBED

    history = site.store.readers.events_of(reader.id)
    assert [e.kind for e in history] == ["signup", "confirm", "preferences", "unsubscribe"]
    first = history[0]
    assert first.source == Source(Channel.WEB, "127.0.0.1")
    assert "I want to receive Top Insights Today" in first.wording
    chosen = {"sectors": ["oil-gas", "ai-semiconductors"], "name": "Reader One"}
    # the time zone the page took from the browser (/zone.js), and no delivery hour chosen
    assert first.details == {**chosen, "timezone": "UTC", "hour": None}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ({"files": {"List-Unsubscribe": (None, "One-Click")}}, None),  # multipart/form-data
        ({"content": b"List-Unsubscribe=One-Click"}, "application/x-www-form-urlencoded"),
        ({"content": b""}, None),
    ],
)
def test_one_click_unsubscribe_takes_every_encoding_mail_providers_send(
    site: Site, body: dict[str, object], content_type: str | None
) -> None:
    token = reader_token(site)
    headers = {"Content-Type": content_type} if content_type else {}
    done = httpx.post(f"{site.base}/unsubscribe/{token}", headers=headers, **body)  # type: ignore[arg-type]
    assert done.status_code == 200, done.text
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None and reader.status == SubscriberStatus.UNSUBSCRIBED


def test_an_unsubscribed_reader_is_told_so_and_may_subscribe_again(site: Site) -> None:
    token = reader_token(site)
    httpx.post(f"{site.base}/unsubscribe/{token}")
    with httpx.Client(base_url=site.base) as client:
        page = client.get(f"/preferences/{token}")
        assert "You are unsubscribed" in page.text and "Subscribe again" in page.text
        saved = client.post(f"/preferences/{token}", data={"name": "Ana", "csrf": "x"})
        assert saved.status_code == 409 and "Preferences saved" not in saved.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', saved.text)  # the newest form
        assert csrf is not None
        again = client.post(f"/resubscribe/{token}", data={"csrf": csrf.group(1)})
        assert again.status_code == 200 and "subscribed again" in again.text
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None and reader.status == SubscriberStatus.CONFIRMED
    kinds = [e.kind for e in site.store.readers.events_of(reader.id)]
    assert kinds == ["added", "unsubscribe", "resubscribe"]


def test_a_mistake_on_the_preferences_page_keeps_what_the_reader_typed(site: Site) -> None:
    token = reader_token(site)
    before = site.store.readers.subscriber_by_token(token)
    with httpx.Client(base_url=site.base) as client:
        form = {
            "csrf": _csrf(client, f"/preferences/{token}"),
            "name": "Ana Ruiz",
            "sectors": ["oil-gas", "mining-metals"],
            "timezone": "asia/kolkata",  # the case is wrong
            "frequency": "weekly",
            "weekday": "4",
            "watchlist": "Copper\nNordwind Shipping",
        }
        page = client.post(f"/preferences/{token}", data=form)
    assert page.status_code == 400
    text = unescape(page.text)
    assert "did you mean 'Asia/Kolkata'?" in text and "Preferences saved" not in text
    # the form again, as the reader filled it, beside the error
    assert 'value="asia/kolkata"' in page.text and 'value="Ana Ruiz"' in page.text
    assert re.search(r'value="oil-gas" checked', page.text)
    assert re.search(r'value="mining-metals" checked', page.text)
    assert re.search(r'value="weekly" checked', page.text)
    assert "Copper\nNordwind Shipping</textarea>" in page.text
    assert site.store.readers.subscriber_by_token(token) == before  # nothing saved


@pytest.mark.slow
def test_the_embedded_form_signs_up_from_another_site_with_double_opt_in(
    site: Site, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from newsletter.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(site.config.path), "embed"])
    assert (
        result.exit_code == 0 and 'action="http://localhost:8000/embed/subscribe"' in result.output
    )
    # the publisher's own page, from another origin (a file), with the form pasted in
    page_file = tmp_path / "publisher.html"
    snippet = result.output.replace("http://localhost:8000", site.base)
    page_file.write_text(f"<!doctype html><title>Publisher</title>{snippet}", encoding="utf-8")
    with chromium() as browser:
        page = browser.new_page()
        page.goto(page_file.as_uri())
        page.fill("#tit-email", "from.elsewhere@example.com")
        page.check("input[value=mining-metals]")
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "Check your inbox"
    signed_up(site.store)
    reader = site.store.readers.subscriber_by_email("from.elsewhere@example.com")
    assert reader is not None and reader.status == SubscriberStatus.PENDING
    (mail,) = confirmations(site, 1)
    assert "/confirm/" in mail.read_text()
    # a bot that fills the hidden field gets the same page and changes nothing
    bot = httpx.post(
        f"{site.base}/embed/subscribe",
        data={"email": "bot@example.com", "website": "http://spam.example"},
    )
    assert bot.status_code == 200 and "Check your inbox" in bot.text
    assert site.store.outgoing.queued_signups() == 0
    assert site.store.readers.subscriber_by_email("bot@example.com") is None


def test_a_sign_up_runs_the_same_statements_whatever_the_address(
    site: Site, client: httpx.Client
) -> None:
    """No timing side channel: the request of a sign-up for a new, a confirmed, a pending or a
    suppressed address runs the same statements on the real engine, and none of them looks at
    who is subscribed; that look happens afterwards, in the web process's worker thread."""
    reader_token(site, "known@example.com")
    add_subscriber(
        site.store,
        "waiting@example.com",
        known_sectors=site.config.sector_slugs,
        status=SubscriberStatus.PENDING,
        now=NOW,
    )
    site.store.readers.suppress("gone@example.com", SuppressionReason.ERASED, now=NOW)
    ran: list[tuple[str, str]] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        ran.append((threading.current_thread().name, statement))

    csrf = _csrf(client)
    addresses = ["new@example.com", "known@example.com", "waiting@example.com", "gone@example.com"]
    on_request = {}
    sqlalchemy.event.listen(site.store.engine, "before_cursor_execute", record)
    try:
        for address in addresses:
            ran.clear()
            answer = client.post("/subscribe", data={"csrf": csrf, "email": address})
            assert answer.status_code == 200 and "Check your inbox" in answer.text
            # the app's worker threads (the outgoing mail, the events) are not the request
            on_request[address] = [s for thread, s in ran if thread not in WORKERS]
    finally:
        sqlalchemy.event.remove(site.store.engine, "before_cursor_execute", record)
    assert on_request["new@example.com"]
    assert all(done == on_request["new@example.com"] for done in on_request.values())
    looked = [s for s in on_request["new@example.com"] if re.search(r"subscribers|suppress", s)]
    assert looked == []
    # and the worker did what each address called for: two confirmations, one "already"
    told = {}
    for path in confirmations(site, 3):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        told[str(message["To"])] = str(message["Subject"]).split(" ")[0]
    assert told == {
        "new@example.com": "Confirm",
        "known@example.com": "You",
        "waiting@example.com": "Confirm",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/preferences/{token}"),
        ("GET", "/unsubscribe/{token}"),
        ("POST", "/unsubscribe/{token}"),
        ("GET", "/archive"),
    ],
)
def test_a_slow_query_never_holds_up_another_request(site: Site, method: str, path: str) -> None:
    """Handlers that touch the database run in the thread pool: while one request waits on a
    slow query, the event loop goes on answering others."""
    token = reader_token(site)
    inside, release = threading.Event(), threading.Event()

    def slow(conn: object, cursor: object, statement: str, *args: object) -> None:
        # the first query of the request under test waits here until the test lets it go
        if threading.current_thread().name not in WORKERS and not inside.is_set():
            inside.set()
            release.wait(timeout=30)

    answers: list[int] = []
    sqlalchemy.event.listen(site.store.engine, "before_cursor_execute", slow)
    try:
        url = site.base + path.format(token=token)
        waiting = threading.Thread(
            target=lambda: answers.append(httpx.request(method, url, timeout=60).status_code)
        )
        waiting.start()
        assert inside.wait(timeout=30), "the request never reached the database"
        # meanwhile, other pages answer (the guard is only against hanging forever)
        assert httpx.get(f"{site.base}/subscribe", timeout=20).status_code == 200
        assert httpx.get(f"{site.base}/healthz", timeout=20).status_code == 200
        assert answers == []  # the first is still waiting on its query
    finally:
        release.set()
        waiting.join(timeout=30)
        sqlalchemy.event.remove(site.store.engine, "before_cursor_execute", slow)
    assert answers == [200]


def test_a_reader_who_complained_is_not_offered_a_way_back_that_cannot_work(site: Site) -> None:
    token = reader_token(site)
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None
    site.store.readers.update_subscriber(reader.id, now=NOW, status=SubscriberStatus.UNSUBSCRIBED)
    site.store.readers.suppress(reader.email, SuppressionReason.COMPLAINED, now=NOW)
    for path in (f"/unsubscribe/{token}", f"/preferences/{token}"):
        page = httpx.get(site.base + path)
        said = " ".join(page.text.split())
        assert "Subscribe again" not in said and "reported an edition as spam" in said
        assert 'href="/subscribe"' in page.text  # another address can still sign up


def test_a_bounced_reader_is_told_so_not_promised_mail_and_may_come_back(site: Site) -> None:
    """Mail to the reader bounced (soft: not suppressed). Their link works, so their mailbox
    does again: the page says why nothing comes and offers to start again."""
    token = reader_token(site)
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None
    site.store.readers.update_subscriber(reader.id, now=NOW, status=SubscriberStatus.BOUNCED)
    with httpx.Client(base_url=site.base) as client:
        page = client.get(f"/preferences/{token}")
        said = " ".join(page.text.split())
        assert "bounced, so none is sent" in said and "Subscribe again" in said
        saved = client.post(f"/preferences/{token}", data={"name": "Ana", "csrf": "x"})
        assert saved.status_code == 409 and "Preferences saved" not in saved.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', saved.text)
        assert csrf is not None
        again = client.post(f"/resubscribe/{token}", data={"csrf": csrf.group(1)})
        assert again.status_code == 200 and "subscribed again" in again.text
    back = site.store.readers.subscriber_by_token(token)
    assert back is not None and back.status == SubscriberStatus.CONFIRMED


def test_an_unknown_address_gets_the_sites_own_page_and_a_trailing_slash_stays_on_the_host(
    site: Site,
) -> None:
    """Behind an HTTPS proxy a redirect names no scheme or host of its own: it is relative."""
    page = httpx.get(site.base + "/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'href="/archive"' in page.text and page.headers["x-content-type-options"] == "nosniff"
    proxied = {"Host": "news.example.com", "X-Forwarded-Proto": "https"}
    moved = httpx.get(site.base + "/archive/?page=2", headers=proxied)
    assert moved.status_code == 307 and moved.headers["location"] == "/archive?page=2"
    elsewhere = httpx.get(site.base + "//evil.example.com/")  # never off the site
    assert elsewhere.headers.get("location") in (None, "/evil.example.com")
    assert httpx.get(site.base + "/archive/", follow_redirects=True).status_code == 200


def test_subscribing_again_right_after_unsubscribing_sticks_when_the_events_are_applied(
    site: Site,
) -> None:
    """The web's unsubscribe is also stored as an event (for the numbers), applied by a worker
    seconds later: applied after the reader's "Subscribe again", it must not undo it (the
    newest action wins), nor may an unsubscribe the provider reports from before it."""
    from datetime import timedelta

    from newsletter.delivery.events import apply_events
    from newsletter.models import EventKind
    from newsletter.readers import subscriptions
    from newsletter.records import ProviderEvent

    token = reader_token(site)
    web = Source(Channel.WEB, "")
    subscriptions.unsubscribe(site.store, token, source=web, now=NOW)
    back = subscriptions.resubscribe(
        site.store, token, publication="Top", source=web, now=NOW + timedelta(seconds=1)
    )
    earlier = ProviderEvent(
        "sg-unsub-1", EventKind.UNSUBSCRIBE, NOW, subscriber_id=back.id, source="sendgrid"
    )
    site.store.events.record_events([earlier], now=NOW + timedelta(seconds=2))
    apply_events(site.config, site.store, now=NOW + timedelta(seconds=3))
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None and reader.status == SubscriberStatus.CONFIRMED
    later = ProviderEvent(
        "sg-unsub-2",
        EventKind.UNSUBSCRIBE,
        NOW + timedelta(seconds=5),
        subscriber_id=back.id,
        source="sendgrid",
    )
    site.store.events.record_events([later], now=NOW + timedelta(seconds=6))
    apply_events(site.config, site.store, now=NOW + timedelta(seconds=7))
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None and reader.status == SubscriberStatus.UNSUBSCRIBED  # newer: wins


def test_signing_up_again_soon_after_unsubscribing_sends_a_working_link_that_sticks(
    site: Site,
) -> None:
    """An unsubscribed reader who signs up again gets a new token (the old emails' links stay
    dead), so their confirmation goes at once, also within the hour of the last one (which
    holds back a second email only while the first one's link still works); and the
    unsubscribe's own event, applied after the sign-up, does not undo it."""
    from datetime import timedelta

    from newsletter.delivery.events import apply_events
    from newsletter.models import EventKind
    from newsletter.readers import subscriptions
    from newsletter.records import ProviderEvent

    web = Source(Channel.WEB, "")
    address = "ines@example.com"

    def sign_up(minutes: int = 0) -> str:  # (the site's worker sends what is due by NOW)
        return subscriptions.sign_up(
            site.config,
            site.store,
            address=address,
            name="Ines",
            sectors=[],
            source=web,
            now=NOW + timedelta(minutes=minutes),
        )

    assert sign_up(-3) == "queued"
    confirmations(site, 1)
    first = site.store.readers.subscriber_by_email(address)
    assert first is not None
    subscriptions.confirm(site.store, first.token, source=web, now=NOW - timedelta(minutes=2))
    left = NOW - timedelta(minutes=1)
    subscriptions.unsubscribe(site.store, first.token, source=web, now=left)
    assert sign_up() == "queued"  # not held: the first email's link is dead
    mails = [mail.read_text(encoding="utf-8") for mail in confirmations(site, 2)]
    again = site.store.readers.subscriber_by_email(address)
    assert again is not None and again.token != first.token
    assert any(f"/confirm/{again.token}" in mail for mail in mails)
    # the provider's report of that unsubscribe, applied after the sign-up: it stays
    late = ProviderEvent("sg-unsub-3", EventKind.UNSUBSCRIBE, left, subscriber_id=first.id)
    site.store.events.record_events([late], now=NOW)
    apply_events(site.config, site.store, now=NOW)
    reader = site.store.readers.subscriber_by_email(address)
    assert reader is not None and reader.status == SubscriberStatus.PENDING
    assert sign_up() != "queued"  # pending with a working link: held within the hour


@pytest.mark.parametrize("reported_spam", [False, True])
def test_an_old_confirmation_link_never_subscribes_a_reader_who_stopped(
    site: Site, reported_spam: bool
) -> None:
    """A reader who unsubscribed (or complained: suppressed) opens the confirmation link of
    their sign-up again: nothing changes, no welcome is sent, and the page says where they
    stand (a complainer is offered no way back)."""
    token = reader_token(site)
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None
    site.store.readers.update_subscriber(reader.id, now=NOW, status=SubscriberStatus.UNSUBSCRIBED)
    if reported_spam:
        site.store.readers.suppress(reader.email, SuppressionReason.COMPLAINED, now=NOW)
    with httpx.Client(base_url=site.base) as client:
        page = client.get(f"/confirm/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        answer = client.post(f"/confirm/{token}", data={"csrf": csrf.group(1)})
    said = " ".join(unescape(answer.text).split())
    assert "You are subscribed" not in said
    assert ("Subscribe again" in said) is not reported_spam
    after = site.store.readers.subscriber_by_token(token)
    assert after is not None and after.status == SubscriberStatus.UNSUBSCRIBED
    assert site.store.outgoing.latest_mail(reader.id, kind=MailKind.WELCOME) is None


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("name", "n" * 1001, "The field name is longer than 1000 characters"),
        ("sectors", ["oil-gas"] * 21, "Too many sectors"),
    ],
)
def test_an_oversized_field_on_the_preferences_page_is_refused_with_the_way_back(
    site: Site, field: str, value: str | list[str], says: str
) -> None:
    token = reader_token(site)
    before = site.store.readers.subscriber_by_token(token)
    with httpx.Client(base_url=site.base) as client:
        form = {"csrf": _csrf(client, f"/preferences/{token}"), "timezone": "UTC", field: value}
        page = client.post(f"/preferences/{token}", data=form)
    assert page.status_code == 400, page.text
    assert says in unescape(page.text) and f'href="/preferences/{token}"' in page.text
    assert site.store.readers.subscriber_by_token(token) == before  # nothing saved


def test_the_access_log_of_serve_never_shows_a_readers_or_editors_token(tmp_path: Path) -> None:
    """A reader's link token opens their preferences (and unsubscribes them); an editor's
    set-password link signs in. `serve`'s access log keeps each request, its token masked."""
    import signal
    import socket
    import subprocess
    import sys

    from tests.conftest import ROOT

    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url)
    token = add_subscriber(store, "ana@example.com", known_sectors=config.sector_slugs, now=NOW)[
        0
    ].token
    store.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["-m", "newsletter", "--config", str(config.path), "serve", "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        paths = [
            f"/preferences/{token}",
            f"/unsubscribe/{token}",
            f"/confirm/{token}",
            "/desk/set-password/Zq3xVe9LmK2pT7rBw4sNd8fHj1",
        ]
        for path in paths:
            httpx.get(base + path)
        httpx.get(f"{base}/archive")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    log = out.decode() + err.decode()  # uvicorn's access log goes to stdout
    assert '"GET /archive HTTP/1.1" 200' in log  # the access log is kept
    assert '"GET /preferences/… HTTP/1.1" 200' in log
    assert '"GET /desk/set-password/… HTTP/1.1"' in log
    assert token not in log and "Zq3xVe9LmK2pT7rBw4sNd8fHj1" not in log
