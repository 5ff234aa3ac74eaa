"""SendGrid's Event Webhook on the real web app: signed batches (a test key pair) change
readers once each; unsigned, stale or forged ones are refused and store nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.delivery import outgoing
from newsletter.delivery.events import sendgrid_events, with_readers
from newsletter.delivery.mailers import make_mailer
from newsletter.delivery.mailers.sendgrid import SendgridMailer
from newsletter.errors import ConfigError
from newsletter.models import (
    Channel,
    ConsentKind,
    MailKind,
    MailStatus,
    Source,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from newsletter.readers.subscriptions import add_subscriber, sign_up
from newsletter.records import Outgoing
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.conftest import DEMO, NOW, TEST_DATABASE, write_config
from tests.sendgrid_server import sendgrid_server
from tests.signing import SigningKey
from tests.test_send import _wait_for
from tests.webserver import running

FEEDS = [
    {"name": p.stem, "url": str(p), "sector": None} for p in sorted((DEMO / "feeds").glob("*.xml"))
]
PATH = "/webhooks/sendgrid"


@dataclass
class Hook:
    base: str
    config: Config
    store: Store
    key: SigningKey
    readers: list[Subscriber]
    edition_id: int

    def post(
        self, events: list[dict[str, Any]], at: datetime = NOW, **headers: str
    ) -> httpx.Response:
        body, signed = self.key.signed(events, at)
        return httpx.post(self.base + PATH, content=body, headers={**signed, **headers}, timeout=30)

    def applied(self) -> None:
        """Wait until the app's worker (a real thread of the server) has applied every stored
        event."""
        _wait_for(lambda: not self.store.events.pending_events(limit=1), timeout=10)

    def status(self, reader: Subscriber) -> str:
        found = self.store.readers.subscriber_by_id(reader.id)
        assert found is not None
        return found.status


def clock() -> datetime:
    return NOW


def prepare(folder: Path) -> Path:
    """A publication whose first edition went to three readers; its config file."""
    settings: dict[str, object] = {
        "feeds": FEEDS,
        "delivery": {"sendgrid": {"webhook_max_bytes": 1_000_000}},
    }
    config = load_config(write_config(folder / "pub", settings))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    first = write_config(folder / "first", {**settings, "feeds": FEEDS[::2]})
    flows.collect_all(load_config(first), store, now=NOW)  # half the feeds today
    for name in ("ana", "ben", "cy"):
        add_subscriber(store, f"{name}@example.com", known_sectors=config.sector_slugs, now=NOW)
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert report.sent == 3
    store.close()
    return config.path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The publication built once for the module's tests, each of which copies its folder
    (config, SQLite file, privacy key); None on a database server, where each test builds it
    in the database of its own."""
    return None if TEST_DATABASE else prepare(tmp_path_factory.mktemp("prepared")).parent


@pytest.fixture
def hook(prepared: Path | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    key = SigningKey()
    monkeypatch.setenv("SENDGRID_WEBHOOK_KEY", key.public)
    if prepared is None:
        path = prepare(tmp_path)
    else:
        shutil.copytree(prepared, tmp_path / "pub")
        path = tmp_path / "pub" / "config.yaml"
    config = load_config(path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    readers = store.readers.subscriber_list()
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None and len(readers) == 3
    app = create_app(config, store, make_mailer(config), now=clock)
    with running(app) as base:
        yield Hook(base, config, store, key, readers, ref.id)


def event(hook: Hook, reader: Subscriber, kind: str, n: int = 0, **fields: Any) -> dict[str, Any]:
    """One event as SendGrid posts it, our custom_args at the top level."""
    return {
        "email": reader.email,
        "timestamp": int(NOW.timestamp()) - 60,
        "event": kind,
        "sg_event_id": f"{kind}-{reader.id}-{n}",
        "sg_message_id": "abc.filter0001",
        "edition_id": str(hook.edition_id),
        "subscriber_id": str(reader.id),
        **fields,
    }


def test_a_hard_bounce_suppresses_the_reader_and_the_next_send_skips_them(hook: Hook) -> None:
    ana, ben, cy = hook.readers
    answer = hook.post([event(hook, ana, "bounce", type="bounce", reason="550 5.1.1 no such user")])
    assert answer.status_code == 200 and answer.json()["new"] == 1
    hook.applied()
    assert hook.status(ana) == SubscriberStatus.BOUNCED
    assert hook.store.readers.suppression_reason(ana.email) == SuppressionReason.HARD_BOUNCE
    history = hook.store.readers.events_of(ana.id)
    assert history[-1].kind == ConsentKind.BOUNCE
    assert history[-1].source.channel == Channel.SENDGRID
    assert history[-1].source.detail.startswith("event ")
    assert "550 5.1.1" in str(history[-1].details["reason"])
    tomorrow = NOW + timedelta(days=1)
    flows.collect_all(hook.config, hook.store, now=tomorrow)  # the other half: new stories
    report = flows.send_edition(
        hook.config, hook.store, make_mailer(hook.config), now=lambda: tomorrow
    )
    assert report.sent == 2
    ref = hook.store.editions.edition_ref(tomorrow.date())
    assert ref is not None
    assert {d.email for d in hook.store.ledger.deliveries_of(ref.id)} == {ben.email, cy.email}
    # and a sign-up of the bounced address does nothing
    outcome = sign_up(
        hook.config,
        hook.store,
        address=ana.email,
        name="",
        sectors=[],
        source=Source(Channel.WEB),
        now=NOW,
    )
    assert outcome == "suppressed"


def test_a_spam_report_unsubscribes_and_suppresses_as_a_complaint(hook: Hook) -> None:
    ana, ben, _ = hook.readers
    assert (
        hook.post([event(hook, ana, "spamreport"), event(hook, ben, "unsubscribe")]).status_code
        == 200
    )
    hook.applied()
    assert hook.status(ana) == SubscriberStatus.UNSUBSCRIBED
    assert hook.store.readers.suppression_reason(ana.email) == SuppressionReason.COMPLAINED
    assert hook.status(ben) == SubscriberStatus.UNSUBSCRIBED
    assert hook.store.readers.suppression_reason(ben.email) is None  # may subscribe again
    assert [e.kind for e in hook.store.readers.events_of(ana.id)][-1] == "complaint"


def test_the_same_batch_twice_changes_nothing_the_second_time(hook: Hook) -> None:
    ana, ben, cy = hook.readers
    batch = [
        event(hook, ana, "delivered"),
        event(hook, ana, "bounce", type="bounce"),
        event(hook, ben, "spamreport"),
        event(hook, cy, "open"),
    ]
    first = hook.post(batch)
    assert first.json() == {"received": 4, "new": 4, "ignored": 0}
    hook.applied()
    histories = [hook.store.readers.events_of(r.id) for r in hook.readers]
    second = hook.post(batch, at=NOW + timedelta(seconds=30))  # SendGrid's retry, signed anew
    assert second.status_code == 200 and second.json()["new"] == 0
    hook.applied()
    assert [hook.store.readers.events_of(r.id) for r in hook.readers] == histories
    assert len(hook.store.events.pending_events()) == 0


@pytest.mark.parametrize(
    "change",
    [
        "forged signature",
        "other body",
        "old timestamp",
        "future timestamp",
        "no signature",
        "other key",
    ],
)
def test_unsigned_stale_or_forged_batches_get_403_and_store_nothing(
    hook: Hook, change: str
) -> None:
    ana = hook.readers[0]
    events = [event(hook, ana, "spamreport")]
    at = NOW - timedelta(hours=1) if change == "old timestamp" else NOW
    at = NOW + timedelta(hours=1) if change == "future timestamp" else at
    body, headers = (SigningKey() if change == "other key" else hook.key).signed(events, at)
    if change == "forged signature":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "MEUCIQDforged" + "A" * 80
    if change == "other body":
        body = body.replace(b"spamreport", b"delivered!")
    if change == "no signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    answer = httpx.post(hook.base + PATH, content=body, headers=headers)
    assert answer.status_code == 403, answer.text
    assert (
        hook.store.events.pending_events() == []
        and hook.store.events.edition_counts()[-1].complaints == 0
    )
    assert hook.status(ana) == SubscriberStatus.CONFIRMED


def test_five_soft_bounces_in_the_window_bounce_the_reader(hook: Hook) -> None:
    ana, ben, cy = hook.readers
    day = 86400
    now = int(NOW.timestamp())

    def daily(reader: Subscriber, i: int, days: int) -> dict[str, Any]:
        """The message of the edition ``i * days`` days ago, deferred."""
        edition = str(hook.edition_id + 100 + i)  # a day's edition each (ids as sent)
        return event(
            hook, reader, "deferred", i, timestamp=now - i * days * day, edition_id=edition
        )

    ana_events = [daily(ana, i, 1) for i in range(4)]
    ana_events.append(event(hook, ana, "bounce", 9, type="blocked", status="4.2.2"))
    # ben: five too, but one of them outside the 7-day window
    ben_events = [daily(ben, i, 2) for i in range(5)]
    cy_events = [daily(cy, i, 0) for i in range(4)]
    assert hook.post(ana_events + ben_events + cy_events).json()["new"] == 14
    hook.applied()
    assert hook.status(ana) == SubscriberStatus.BOUNCED
    assert hook.store.readers.suppression_reason(ana.email) is None  # soft: not suppressed
    assert hook.status(ben) == SubscriberStatus.CONFIRMED
    assert hook.status(cy) == SubscriberStatus.CONFIRMED


def test_unknown_events_and_odd_entries_are_stored_and_change_nothing(hook: Hook) -> None:
    ana = hook.readers[0]
    batch: list[Any] = [
        event(hook, ana, "brand_new_kind"),
        event(hook, ana, "processed"),
        "not an object",
        {"event": "delivered"},  # no id, no reader
        {},  # no event at all: ignored, not stored
        {"email": ana.email},
        event(hook, ana, "dropped", reason="Unsubscribed Address"),
    ]
    answer = hook.post(batch)
    assert answer.status_code == 200 and answer.json() == {"received": 4, "new": 4, "ignored": 3}
    hook.applied()
    assert hook.status(ana) == SubscriberStatus.UNSUBSCRIBED


def test_events_without_our_ids_are_matched_by_address(hook: Hook) -> None:
    ben = hook.readers[1]
    bare = {
        "email": ben.email.upper(),
        "timestamp": int(NOW.timestamp()),
        "event": "dropped",
        "reason": "Bounced Address",
        "sg_event_id": "bare-1",
    }
    assert hook.post([bare]).status_code == 200
    hook.applied()
    assert hook.status(ben) == SubscriberStatus.BOUNCED


def test_a_batch_too_large_or_not_json_is_refused(hook: Hook) -> None:
    _, headers = hook.key.signed([], NOW)
    big = b"[" + b" " * 1_000_000 + b"]"
    assert httpx.post(hook.base + PATH, content=big, headers=headers, timeout=30).status_code == 413
    bad, headers = hook.key.signed({"not": "a list"}, NOW)
    assert httpx.post(hook.base + PATH, content=bad, headers=headers).status_code == 400


def test_stats_counts_each_reader_once_per_kind_and_clicks_per_story(hook: Hook) -> None:
    ana, ben, cy = hook.readers
    stored = hook.store.editions.edition(NOW.date())
    assert stored is not None
    first, second = stored.edition.sections[0], stored.edition.sections[1]
    top, other = first.stories[0], second.stories[0]
    batch = [event(hook, r, "delivered") for r in (ana, ben, cy)]
    batch += [event(hook, ana, "open", n) for n in range(3)]  # one reader opening three times
    batch += [event(hook, ben, "open")]
    batch += [event(hook, ana, "click", 1, url=top.url), event(hook, ana, "click", 2, url=top.url)]
    batch += [event(hook, ben, "click", 1, url=top.url), event(hook, cy, "click", 1, url=other.url)]
    batch += [event(hook, cy, "spamreport")]
    answer = hook.post(batch)
    assert answer.status_code == 200
    hook.applied()
    # ben leaves through the link in the email: counted against this edition too
    unsubscribe = httpx.post(
        f"{hook.base}/unsubscribe/{ben.token}", data={"List-Unsubscribe": "One-Click"}
    )
    assert unsubscribe.status_code == 200
    result = CliRunner().invoke(cli, ["--config", str(hook.config.path), "stats", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    counts = {k: v for k, v in row.items() if not isinstance(v, list | dict)}
    assert counts == dict(
        date=NOW.date().isoformat(),
        kind="daily",
        bounced=0,
        sent=3,
        delivered=3,
        complaints=1,
        unsubscribes=1,
        opens=2,
        clicks=3,
    )
    assert row["stories"][0] == dict(
        url=top.url, title=top.title, sector=first.sector.slug, clicks=2
    )
    assert row["sectors"] == {first.sector.slug: 2, second.sector.slug: 1}
    table = CliRunner().invoke(
        cli, ["--config", str(hook.config.path), "stats", "--date", NOW.date().isoformat()]
    )
    assert "Apple Mail Privacy Protection" in table.output and top.title[:30] in table.output
    status = CliRunner().invoke(
        cli, ["--config", str(hook.config.path), "status"], env={"NEWSLETTER_NOW": NOW.isoformat()}
    )
    assert "complaint rate 33.33%" in status.output


def test_without_a_key_every_batch_is_refused_and_a_bad_key_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENDGRID_WEBHOOK_KEY", raising=False)
    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url)
    with running(create_app(config, store, make_mailer(config), now=clock)) as base:
        body, headers = SigningKey().signed([{"event": "delivered"}], NOW)
        answer = httpx.post(base + PATH, content=body, headers=headers)
    assert answer.status_code == 403 and "SENDGRID_WEBHOOK_KEY" in answer.json()["error"]
    assert store.events.pending_events() == []
    monkeypatch.setenv("SENDGRID_WEBHOOK_KEY", "not a key")
    with pytest.raises(ConfigError, match="verification key cannot be read"):
        create_app(config, store, make_mailer(config), now=clock)


def test_events_stored_by_a_server_that_died_are_applied_when_the_next_one_starts(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    ana, _ = add_subscriber(store, "ana@example.com", known_sectors=config.sector_slugs, now=NOW)
    # what a server killed between answering and applying leaves behind
    found, _ = sendgrid_events(
        [{"event": "spamreport", "sg_event_id": "left-1", "subscriber_id": str(ana.id)}], now=NOW
    )
    assert store.events.record_events(found, now=NOW) == 1
    with running(create_app(config, store, make_mailer(config), now=clock)) as base:
        hook = Hook(base, config, store, SigningKey(), [ana], 0)
        hook.applied()
        assert hook.status(ana) == SubscriberStatus.UNSUBSCRIBED


def test_transactional_mail_has_its_own_category_and_never_counts_for_an_edition(
    hook: Hook,
) -> None:
    ana, ben, _ = hook.readers
    newcomer, _ = add_subscriber(
        hook.store,
        "newcomer@example.com",
        known_sectors=hook.config.sector_slugs,
        status=SubscriberStatus.PENDING,
        now=NOW,
    )
    mails = [
        (newcomer, MailKind.CONFIRMATION),
        (ana, MailKind.ALREADY_SUBSCRIBED),
        (ben, MailKind.WELCOME),
    ]
    with sendgrid_server() as provider:  # the outgoing worker's own sending, through SendGrid
        mailer = SendgridMailer(
            api_key=provider.api_key,
            api_host=provider.url,
            from_address=hook.config.file.delivery.from_address,
        )
        for reader, kind in mails:
            mail = Outgoing(0, reader.id, kind, reader.name, (), MailStatus.PENDING, 0, NOW)
            outgoing.send_mail(hook.config, mailer, reader, mail, day=NOW.date())
    bodies = provider.accepted
    assert [b["categories"] for b in bodies] == [["transactional", k.value] for _, k in mails]
    people = [p for body in bodies for p in body["personalizations"]]
    assert [p["custom_args"] for p in people] == [{"subscriber_id": str(r.id)} for r, _ in mails]
    # SendGrid's events about them come back with what each request carried
    batch = [
        {
            "email": p["to"][0]["email"],
            "timestamp": int(NOW.timestamp()) - 30,
            "event": kind,
            "sg_event_id": f"transactional-{kind}-{n}",
            "category": body["categories"],
            **p["custom_args"],
        }
        for n, body in enumerate(bodies)
        for p in body["personalizations"]
        for kind in ("delivered", "open", "click")
    ]
    batch.append(event(hook, ana, "delivered"))  # the edition's own: this one counts
    assert hook.post(batch).status_code == 200
    hook.applied()
    (stats,) = hook.store.events.edition_counts(dates=[NOW.date()])
    assert (stats.delivered, stats.opens, stats.clicks) == (1, 0, 0)


def test_an_event_whose_address_is_not_its_readers_changes_only_the_address_it_names(
    hook: Hook,
) -> None:
    """A late complaint about an erased reader whose id a new reader was given (SQLite reuses
    the highest id): the address the provider names decides, not our id alone."""
    _, ben, cy = hook.readers
    late = event(hook, ben, "spamreport", email="erased@example.com")  # ben's id, not ben
    moved = event(hook, ben, "spamreport", 1, email=cy.email.upper())  # ben's id, cy's address
    assert hook.post([late, moved]).json()["new"] == 2
    hook.applied()
    assert hook.status(ben) == SubscriberStatus.CONFIRMED
    assert hook.store.readers.suppression_reason(ben.email) is None
    assert hook.status(cy) == SubscriberStatus.UNSUBSCRIBED
    assert hook.store.readers.suppression_reason(cy.email) == SuppressionReason.COMPLAINED
    assert hook.store.readers.suppression_reason("erased@example.com") is None  # nobody's


def test_a_message_deferred_again_and_again_is_one_soft_bounce(hook: Hook) -> None:
    """SendGrid reports each retry of one deferred message: one edition's message counts once
    towards the soft-bounce limit, however many times it was deferred."""
    ana = hook.readers[0]
    retries = [event(hook, ana, "deferred", i, response="451 4.7.1 greylisted") for i in range(6)]
    assert hook.post(retries).json()["new"] == 6
    hook.applied()
    assert hook.status(ana) == SubscriberStatus.CONFIRMED


def test_a_reader_never_sent_the_edition_an_event_names_is_not_changed_by_it(
    hook: Hook, tmp_path: Path
) -> None:
    """A bounce report read from a mailbox trusts our id over the address (a forwarder may
    have rewritten it), but only for a reader the edition went to: a reader added after it,
    perhaps with an erased reader's id, is left alone."""
    dee, _ = add_subscriber(
        hook.store, "dee@example.com", known_sectors=hook.config.sector_slugs, now=NOW
    )
    late = event(hook, dee, "bounce", type="bounce", reason="550 5.1.1 no such user")
    late["email"] = "erased@example.com"
    ana = event(hook, hook.readers[0], "bounce", type="bounce", reason="550 5.1.1 no such user")
    ana["email"] = "forwarded@example.net"  # a forwarder's address: our id still names ana
    found, _ = sendgrid_events([late, ana], now=NOW)
    named = with_readers(hook.store, found, by_address=False)
    assert [e.subscriber_id for e in named] == [None, hook.readers[0].id]
