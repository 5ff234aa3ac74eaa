"""``bounces import``: delivery status notifications in a Maildir (and an mbox), written here,
read by flufl.bounce, set the right readers bounced."""

from __future__ import annotations

import email
import mailbox
import re
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.delivery.mailers.message import build_message, reader_tag
from newsletter.models import (
    Channel,
    Recipient,
    RenderedEmail,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from tests.conftest import NOW, write_config


def dsn(recipient: str, *, status: str, returned_id: str = "<x@y>") -> Message:
    """A notification as a receiving server writes one (RFC 3464): a 5.x.x status is a
    permanent failure, a 4.x.x one a delay."""
    action = "delayed" if status.startswith("4") else "fail" + "ed"
    text = f"""\
From: Mail Delivery System <mailer-daemon@mx.example.net>
To: bounces@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <{action}.{recipient}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message to {recipient} could not be delivered ({status}).

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Wed, 25 Nov 2026 06:00:03 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status} the mailbox said no

--b1
Content-Type: text/rfc822-headers

From: insights@example.com
To: {recipient}
Message-ID: {returned_id}

--b1--
"""
    return email.message_from_string(text)


def setup(tmp_path: Path) -> tuple[Config, Store, dict[str, int]]:
    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    ids = {}
    for name in ("ana", "ben", "cy", "dee"):
        reader, _ = add_subscriber(
            store, f"{name}@example.org", known_sectors=config.sector_slugs, now=NOW
        )
        ids[name] = reader.id
    return config, store, ids


def status_of(store: Store, reader_id: int) -> str:
    reader = store.readers.subscriber_by_id(reader_id)
    assert reader is not None
    return reader.status


def run(config: Config, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--config", str(config.path), *args], env={"NEWSLETTER_NOW": NOW.isoformat()}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_permanent_failures_bounce_and_transient_ones_are_only_counted(tmp_path: Path) -> None:
    config, store, ids = setup(tmp_path)
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn("ana@example.org", status="5.1.1"))
    box.add(dsn("BEN@example.org", status="5.2.1"))
    box.add(dsn("cy@example.org", status="4.2.2"))
    box.add(email.message_from_string("Subject: thanks\n\nJust a reader writing back.\n"))
    out = run(config, "bounces", "import", str(tmp_path / "bounces"))
    assert "Read 4 messages" in out and "2 readers set bounced" in out
    assert status_of(store, ids["ana"]) == SubscriberStatus.BOUNCED
    assert status_of(store, ids["ben"]) == SubscriberStatus.BOUNCED
    assert status_of(store, ids["cy"]) == SubscriberStatus.CONFIRMED
    assert status_of(store, ids["dee"]) == SubscriberStatus.CONFIRMED
    assert store.readers.suppression_reason("ana@example.org") == SuppressionReason.HARD_BOUNCE
    assert store.readers.events_of(ids["ana"])[-1].source.channel == Channel.MAILBOX
    assert store.readers.events_of(ids["ana"])[-1].source.detail.startswith("bounces/")
    again = run(config, "bounces", "import", str(tmp_path / "bounces"))
    assert "0 new failure reports" in again and "0 readers set bounced" in again


def test_transient_failures_past_the_limit_bounce_the_reader_from_an_mbox(tmp_path: Path) -> None:
    config, store, ids = setup(tmp_path)
    box = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    for n in range(5):
        message = dsn("dee@example.org", status="4.2.2")
        message.replace_header("Message-ID", f"<delay-{n}@mx.example.net>")  # five reports
        box.add(message)
    box.close()
    out = run(config, "bounces", "import", str(tmp_path / "bounces.mbox"))
    assert "5 new failure reports" in out
    assert status_of(store, ids["dee"]) == SubscriberStatus.BOUNCED
    assert store.readers.suppression_reason("dee@example.org") is None


def message_id(config: Config, reader_id: int, edition_id: int) -> str:
    """The Message-ID our mailers give a reader's copy (edition 0: a confirmation's)."""
    variant = RenderedEmail("Subject", "<p>Hi</p>", "Hi")
    values = {"unsubscribe_url": "https://example.com/u/t"}
    recipient = Recipient(reader_id, Subscriber(reader_id, "any@example.org"), values)
    built = build_message(
        variant,
        recipient,
        from_address="insights@example.com",
        edition_id=edition_id,
        edition_date=NOW.date(),
        tag_key=config.privacy_key(),
    )
    return str(built["Message-ID"])


@pytest.mark.parametrize("edition", [4, 0])  # 0: a confirmation or welcome email's
def test_our_message_id_names_the_edition_and_the_reader(tmp_path: Path, edition: int) -> None:
    config, store, ids = setup(tmp_path)
    box = mailbox.Maildir(tmp_path / "box", create=True)
    # the reader's address was rewritten by a forwarder: the returned Message-ID still names them
    ours = message_id(config, ids["cy"], edition)
    box.add(dsn("old-forward@example.net", status="5.1.1", returned_id=ours))
    run(config, "bounces", "import", str(tmp_path / "box"))
    assert status_of(store, ids["cy"]) == SubscriberStatus.BOUNCED


def test_a_forged_report_naming_a_reader_bounces_nobody(tmp_path: Path) -> None:
    """Anyone can write to the bounce mailbox: a report about the writer's own address whose
    returned Message-ID (or VERP address) names a reader, unsigned or signed wrongly, or signed
    for another reader, changes no reader; the same report with our own signature does."""
    config, store, ids = setup(tmp_path)
    cy = ids["cy"]
    real = message_id(config, cy, 4)
    forged = [
        f"<177.1.abc.e4.s{cy}@example.com>",  # the shape, without the signature
        re.sub(r"\.m[0-9a-f]{12}@", ".m" + "0" * 12 + "@", real),  # a wrong signature
        message_id(config, ids["dee"], 4).replace(f"s{ids['dee']}.", f"s{cy}."),
    ]
    box = mailbox.Maildir(tmp_path / "box", create=True)
    for n, returned in enumerate(forged):
        box.add(dsn(f"attacker{n}@evil.example", status="5.1.1", returned_id=returned))
    verp = dsn("attacker@evil.example", status="5.1.1")
    verp.replace_header("To", f"bounces+{cy}@example.com")  # an unsigned VERP address
    box.add(verp)
    config_path = write_config(
        tmp_path, {"feeds": [], "delivery": {"smtp": {"return_path": "bounces+{id}@example.com"}}}
    )
    config = load_config(config_path)
    out = run(config, "bounces", "import", str(tmp_path / "box"))
    assert "0 readers set bounced" in out
    assert {status_of(store, n) for n in ids.values()} == {SubscriberStatus.CONFIRMED}
    signed = dsn("forwarded@example.net", status="5.1.1")
    signed.replace_header(
        "To", f"bounces+{cy}-{reader_tag(config.privacy_key(), 0, cy)}@example.com"
    )
    box.add(signed)
    run(config, "bounces", "import", str(tmp_path / "box"))
    assert status_of(store, cy) == SubscriberStatus.BOUNCED  # our own VERP address: believed


def test_a_path_that_is_no_mailbox_is_a_clear_error(tmp_path: Path) -> None:
    config, _, _ = setup(tmp_path)
    (tmp_path / "folder").mkdir()
    result = CliRunner().invoke(
        cli, ["--config", str(config.path), "bounces", "import", str(tmp_path / "folder")]
    )
    assert result.exit_code == 1
    assert "not a Maildir" in result.output and "Hint:" in result.output


def test_one_saved_message_is_read_and_a_file_of_something_else_is_an_error(
    tmp_path: Path,
) -> None:
    config, store, ids = setup(tmp_path)
    one = tmp_path / "one.eml"  # a single report saved from a mail client: no mbox "From " line
    one.write_bytes(dsn("ana@example.org", status="5.1.1").as_bytes())
    out = run(config, "bounces", "import", str(one))
    assert "Read 1 message from" in out and "1 new failure report" in out
    assert status_of(store, ids["ana"]) == SubscriberStatus.BOUNCED
    other = tmp_path / "notes.txt"
    other.write_text("just some notes\nabout the day\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(config.path), "bounces", "import", str(other)]
    )
    assert result.exit_code == 1
    assert "is not an mbox file" in result.output and "Hint:" in result.output
