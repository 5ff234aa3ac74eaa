"""`newsletter send` and its ledger: everyone once, crashes, failures, two senders."""

from __future__ import annotations

import email
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.errors import DeliveryError, TemplateError
from newsletter.models import DeliveryStatus, EditionStatus, SubscriberStatus
from newsletter.readers.subscriptions import add_subscriber
from newsletter.records import NewReader
from newsletter.store import Store
from tests.conftest import DEMO, NOW, ROOT, write_config
from tests.sendgrid_server import SendgridServer, sendgrid_server

KEY = "SG.local-test-key"
FEEDS = [
    {"name": p.stem, "url": str(p)}
    for p in sorted((DEMO / "feeds").glob("*.xml"))
    if p.stem != "northwind-commodities"
]


def clock() -> datetime:
    return NOW


@pytest.fixture
def server() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key=KEY) as s:
        yield s


def make_config(tmp_path: Path, backend: str = "outbox", **delivery: object) -> Config:
    # preflight off: these sends go to local servers, their links to localhost
    # (the preflight itself: tests/test_preflight.py)
    settings: dict[str, object] = {
        "backend": backend,
        "batch_size": 10,
        "preflight": False,
        **delivery,
    }
    return load_config(write_config(tmp_path, {"feeds": FEEDS, "delivery": settings}))


def add_readers(config: Config, store: Store, n: int) -> None:
    for i in range(n):
        add_subscriber(
            store,
            f"reader{i:03d}@example.com",
            name=f"Reader {i}",
            known_sectors=config.sector_slugs,
            now=NOW,
        )


def collected(config: Config) -> Store:
    from newsletter import flows

    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    return store


def test_a_send_leaves_its_edition_out_of_the_collectors_passes_until_it_ends(
    tmp_path: Path,
) -> None:
    """While it sends, what existed when the edition was frozen is left out of the cycle
    collector's full passes; afterwards nothing is (a scheduler sends day after day in one
    process, and nothing may outlive its send uncollected)."""
    config = make_config(tmp_path)
    store = collected(config)
    add_readers(config, store, 23)
    frozen: list[int] = []
    report = flows.send_edition(
        config,
        store,
        make_mailer(config),
        now=clock,
        progress=lambda done, total: frozen.append(gc.get_freeze_count()),
    )
    assert report.sent == 23 and frozen and min(frozen) > 0
    assert gc.get_freeze_count() == 0


def test_every_confirmed_reader_gets_it_once(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = collected(config)
    add_readers(config, store, 23)
    add_subscriber(
        store,
        "waiting@example.com",
        known_sectors=config.sector_slugs,
        status=SubscriberStatus.PENDING,
        now=NOW,
    )
    add_subscriber(
        store,
        "defence@example.com",
        sectors=["aerospace-defense"],
        known_sectors=config.sector_slugs,
        now=NOW,
    )
    mailer = make_mailer(config)
    report = flows.send_edition(config, store, mailer, now=clock)
    assert (report.sent, report.failed, report.skipped) == (24, 0, 0)
    files = sorted((config.outbox_dir / "2026-11-25").glob("*.eml"))
    assert len(files) == 24
    again = flows.send_edition(config, store, mailer, now=clock)
    assert (again.sent, again.already_sent) == (0, 24)
    assert len(list((config.outbox_dir / "2026-11-25").glob("*.eml"))) == 24
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None and ref.status == EditionStatus.SENT
    assert store.ledger.delivery_counts(ref.id) == {DeliveryStatus.SENT: 24}
    by_reader = {}
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        part = message.get_body(("plain",))
        assert part is not None
        by_reader[str(message["To"])] = part.get_content()
    defence = by_reader["defence@example.com"]
    assert "== Aerospace & Defense ==" in defence and "== Oil & Gas ==" not in defence
    everyone = by_reader["Reader 1 <reader001@example.com>"]
    assert "== Oil & Gas ==" in everyone and "== Aerospace & Defense ==" in everyone


def test_a_refused_key_stops_the_send_and_marks_nothing_sent(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, "sendgrid", sendgrid={"api_host": server.url})
    store = collected(config)
    add_readers(config, store, 5)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")
    with pytest.raises(DeliveryError, match="refused the API key"):
        flows.send_edition(config, store, make_mailer(config), now=clock)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None and store.ledger.delivery_counts(ref.id) == {DeliveryStatus.PENDING: 5}

    # Someone leaves before the send is run again: they are skipped at batch time.
    left = store.readers.subscriber_by_email("reader001@example.com")
    assert left is not None
    store.readers.update_subscriber(left.id, now=NOW, status=SubscriberStatus.UNSUBSCRIBED)
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert (report.sent, report.skipped) == (4, 1)
    assert "reader001@example.com" not in server.recipients
    assert store.ledger.delivery_counts(ref.id) == {
        DeliveryStatus.SENT: 4,
        DeliveryStatus.SKIPPED: 1,
    }


def test_a_failed_batch_is_recorded_and_the_send_goes_on(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    config = make_config(tmp_path, "sendgrid", batch_size=3, sendgrid={"api_host": server.url})
    store = collected(config)
    add_readers(config, store, 9)
    server.faults.append(("400", 0))
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert (report.sent, report.failed) == (6, 3)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None and ref.status == EditionStatus.SENT  # nothing left in the queue
    rows = store.ledger.deliveries_of(ref.id)
    assert sorted(r.status for r in rows) == [DeliveryStatus.FAILED] * 3 + [DeliveryStatus.SENT] * 6
    again = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert again.sent == 0  # failures wait for an explicit retry
    retried = flows.send_edition(config, store, make_mailer(config), now=clock, retry_failed=True)
    assert (retried.sent, retried.failed) == (3, 0)
    assert store.ledger.delivery_counts(ref.id) == {DeliveryStatus.SENT: 9}
    assert set(server.recipients.values()) == {1}


def test_a_call_holds_an_eighth_of_the_readers_in_flight(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 800 readers in flight a call holds 100 at most, so the room one call leaves takes
    the next: 300 readers of one variant, claimed together, go in three calls, each reader
    once."""
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    sendgrid = {"api_host": server.url}
    config = make_config(
        tmp_path, "sendgrid", batch_size=300, readers_in_flight=800, sendgrid=sendgrid
    )
    store = collected(config)
    add_readers(config, store, 300)  # every reader chose every sector: one variant
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert report.sent == 300 and set(server.recipients.values()) == {1}
    assert server.requests == 3
    assert {len(body["personalizations"]) for body in server.accepted} == {100}


def test_the_room_a_call_leaves_is_filled_by_the_first_readers_of_the_next(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """800 readers in flight, calls of 100: a variant of 30 readers and seven calls of 100
    leave room for 70, so the next call's first 70 readers go at once (nine requests in
    flight together, which the server waits for) and its other 30 wait for room."""
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    sendgrid = {"api_host": server.url}
    config = make_config(
        tmp_path, "sendgrid", batch_size=1000, readers_in_flight=800, sendgrid=sendgrid
    )
    store = collected(config)
    every = tuple(config.sector_slugs)  # the whole edition, as a variant of its own
    store.readers.bulk_import(
        [
            NewReader(f"r{i:04d}@example.com", "", every if i < 30 else (), f"t{i:04d}-{'x' * 30}")
            for i in range(1000)
        ],
        [],
        now=NOW,
    )
    server.gather = threading.Barrier(9)  # 30 + 7 x 100 + 70 readers
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert report.sent == 1000 and set(server.recipients.values()) == {1}
    sizes = sorted(len(body["personalizations"]) for body in server.accepted)
    assert sum(sizes) == 1000 and max(sizes) == 100 and 70 in sizes
    assert server.most_in_flight >= 9


def test_a_large_room_is_claimed_several_calls_at_a_time(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 readers in flight: a claim holds an eighth of them (2,500), so two variants of
    1,200 and 1,300 readers claimed together go in full calls of 1,000 and their remainders;
    claims of a call's worth (1,000) would have cut a variant at the claim's end instead."""
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    sendgrid = {"api_host": server.url}
    config = make_config(
        tmp_path, "sendgrid", batch_size=1000, readers_in_flight=20_000, sendgrid=sendgrid
    )
    store = collected(config)
    every, one = tuple(config.sector_slugs), tuple(config.sector_slugs[:1])
    store.readers.bulk_import(
        [
            NewReader(
                f"r{i:04d}@example.com", "", every if i < 1200 else one, f"t{i:04d}-{'x' * 30}"
            )
            for i in range(2500)
        ],
        [],
        now=NOW,
    )
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert report.sent == 2500 and set(server.recipients.values()) == {1}
    sizes = sorted(len(body["personalizations"]) for body in server.accepted)
    assert sizes == [200, 300, 1000, 1000]


def test_dry_run_validates_in_sandbox_and_stores_nothing(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    config = make_config(tmp_path, "sendgrid", sendgrid={"api_host": server.url})
    store = collected(config)
    add_readers(config, store, 4)
    report = flows.send_edition(config, store, make_mailer(config), now=clock, dry_run=True)
    assert report.dry_run and report.sent == 4
    assert all(b["mail_settings"]["sandbox_mode"]["enable"] for b in server.accepted)
    assert store.editions.edition_ref(NOW.date()) is None  # no edition frozen, no ledger


def _send_process(config_path: Path, server: SendgridServer, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SENDGRID_API_KEY": KEY, "NEWSLETTER_NOW": NOW.isoformat()}
    command = ["--config", str(config_path), "send", "--no-collect", *args]
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def _wait_for(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


@pytest.mark.parametrize(
    "kill_at_request",
    [pytest.param(0, marks=pytest.mark.slow), 1, pytest.param(3, marks=pytest.mark.slow)],
)
@pytest.mark.slow
def test_a_killed_send_finishes_on_the_next_run(
    tmp_path: Path, server: SendgridServer, kill_at_request: int
) -> None:
    batch, parallel = 10, 3
    sendgrid = {"api_host": server.url, "concurrency": parallel}
    config = make_config(tmp_path, "sendgrid", batch_size=batch, sendgrid=sendgrid)
    store = collected(config)
    add_readers(config, store, 60)
    store.close()
    server.delay = 0.3  # each request is in flight for a while
    process = _send_process(config.path, server)
    if kill_at_request:
        _wait_for(lambda: server.requests >= kill_at_request)
    else:
        time.sleep(0.5)  # killed while starting, maybe before claiming anything
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    server.delay = 0.0
    rerun = _send_process(config.path, server)
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()

    store = Store.open(config.database_url)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None and ref.status == EditionStatus.SENT
    rows = store.ledger.deliveries_of(ref.id)
    assert len(rows) == 60 and {r.status for r in rows} == {DeliveryStatus.SENT}
    assert set(server.recipients) == {f"reader{i:03d}@example.com" for i in range(60)}
    twice = [a for a, n in server.recipients.items() if n > 1]
    assert len(twice) <= parallel * batch  # only the requests in flight at the kill
    assert all(n <= 2 for n in server.recipients.values())


@pytest.mark.slow
def test_two_sends_at_once_never_send_the_same_reader_twice(
    tmp_path: Path, server: SendgridServer
) -> None:
    config = make_config(tmp_path, "sendgrid", batch_size=5, sendgrid={"api_host": server.url})
    store = collected(config)
    add_readers(config, store, 40)
    store.close()
    server.delay = 0.1
    first, second = _send_process(config.path, server), _send_process(config.path, server)
    for process in (first, second):
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    assert len(server.recipients) == 40
    assert set(server.recipients.values()) == {1}


def _parallel_send(
    tmp_path: Path, server: SendgridServer, *, concurrency: int, batch: int, readers: int
) -> tuple[Config, Store]:
    """A collected store with readers, sending through ``server`` with requests in flight."""
    sendgrid = {"api_host": server.url, "concurrency": concurrency}
    config = make_config(tmp_path, "sendgrid", batch_size=batch, sendgrid=sendgrid)
    store = collected(config)
    add_readers(config, store, readers)
    return config, store


def test_requests_are_in_flight_together_and_each_reader_gets_one_copy(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    config, store = _parallel_send(tmp_path, server, concurrency=4, batch=7, readers=90)
    for n, sectors in enumerate([["oil-gas"], ["evs-battery", "oil-gas"], ["mining-metals"]]):
        for i in range(10):
            add_subscriber(
                store,
                f"chooser{n}-{i}@example.com",
                sectors=sectors,
                known_sectors=config.sector_slugs,
                now=NOW,
            )
    # the first four requests are answered only once all four are in flight together: a
    # sender that sends one at a time gets 500s for them
    server.gather = threading.Barrier(4)
    done: list[int] = []
    report = flows.send_edition(
        config, store, make_mailer(config), now=clock, progress=lambda n, _: done.append(n)
    )
    assert server.most_in_flight == 4 and server.requests >= 120 // 7
    assert (report.sent, report.failed) == (120, 0)
    assert len(server.recipients) == 120 and set(server.recipients.values()) == {1}
    assert done[-1] == 120 and done == sorted(done)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None and store.ledger.delivery_counts(ref.id) == {DeliveryStatus.SENT: 120}


def test_the_next_batch_is_claimed_while_requests_fly_one_batch_at_most(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While requests are in flight the next batch is claimed ahead: whenever the provider
    takes a request, the rows claimed and not yet recorded are at most the readers in flight
    and one batch (what a stop gives back unsent), and more than those in flight once the
    first four requests are in flight together (the first answer waits for that claim)."""
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    # the first answer waits (up to 30 s on a loaded machine) for the claim ahead: the
    # client's timeout is longer, so no request times out and goes again while it waits
    sendgrid = {"api_host": server.url, "concurrency": 4, "timeout_seconds": 120}
    config = make_config(
        tmp_path, "sendgrid", batch_size=10, readers_in_flight=40, sendgrid=sendgrid
    )
    store = collected(config)
    add_readers(config, store, 150)
    watcher = Store.open(config.database_url)
    claimed: list[int] = []
    waiting = threading.Event()  # never set: its wait is the pause between two looks

    def rows_claimed() -> int:
        ref = watcher.editions.edition_ref(NOW.date())
        assert ref is not None
        return watcher.ledger.delivery_counts(ref.id).get(DeliveryStatus.CLAIMED, 0)

    def look(accepted: int) -> None:
        count, looks = rows_claimed(), 0
        while accepted == 1 and count <= 40 and looks < 3000:  # the batch claimed ahead
            waiting.wait(0.01)
            count, looks = rows_claimed(), looks + 1
        claimed.append(count)

    server.gather = threading.Barrier(4)  # the first four requests in flight together
    server.on_accept = look
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert report.sent == 150 and set(server.recipients.values()) == {1}
    assert len(claimed) == server.requests
    assert 40 < max(claimed) <= 40 + 10  # the readers in flight, and a batch claimed ahead
    watcher.close()


def test_a_refused_key_midway_lets_the_requests_in_flight_finish_and_gives_back_the_rest(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    config, store = _parallel_send(tmp_path, server, concurrency=3, batch=5, readers=60)
    server.gather = threading.Barrier(3)  # three requests in flight together ...
    server.faults.extend([("accept", 0), ("accept", 0), ("401", 0)])  # ... one of them refused
    with pytest.raises(DeliveryError, match="refused the API key"):
        flows.send_edition(config, store, make_mailer(config), now=clock)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None
    counts = store.ledger.delivery_counts(ref.id)
    assert set(counts) == {DeliveryStatus.SENT, DeliveryStatus.PENDING}  # none left claimed
    assert sum(counts.values()) == 60
    rows = store.ledger.deliveries_of(ref.id)
    sent = {r.email for r in rows if r.status == DeliveryStatus.SENT}
    assert len(sent) >= 10 and sent == set(server.recipients)  # what was accepted is recorded
    server.gather = None
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert report.sent == 60 - len(sent) and report.already_sent == len(sent)
    assert len(server.recipients) == 60 and set(server.recipients.values()) == {1}


def test_cli_send_and_subscribers(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    runner = CliRunner()
    env = {"NEWSLETTER_NOW": NOW.isoformat()}
    path = str(config.path)
    result = runner.invoke(
        cli,
        [
            "--config",
            path,
            "subscribers",
            "add",
            "Ana@Example.COM",
            "--name",
            "Ana Ruiz",
            "--sectors",
            "oil-gas",
        ],
        env=env,
    )
    added = "Added ana@example.com (confirmed; oil-gas; 07:00 UTC)"
    assert result.exit_code == 0 and added in result.stdout
    bad = runner.invoke(cli, ["--config", path, "subscribers", "add", "not-an-address"], env=env)
    assert bad.exit_code == 1 and "is not a valid email address" in bad.stderr
    listed = runner.invoke(cli, ["--config", path, "subscribers", "list"], env=env)
    assert "ana@example.com" in listed.stdout and "1 reader\n" in listed.stdout
    dry = runner.invoke(cli, ["--config", path, "send", "--dry-run"], env=env)
    assert (
        dry.exit_code == 0
        and "Dry run: edition of 2026-11-25: would send to 1 reader," in dry.stdout
    )
    assert "nothing was sent" in dry.stdout
    assert not config.outbox_dir.exists()
    sent = runner.invoke(cli, ["--config", path, "send"], env=env)
    assert sent.exit_code == 0, sent.stderr
    assert "Sent: edition of 2026-11-25: 1 reader sent, 0 failed, 0 skipped" in sent.stdout
    status = runner.invoke(cli, ["--config", path, "status"], env={**env, "COLUMNS": "200"})
    assert "2026-11-25" in status.stdout and EditionStatus.SENT in status.stdout
    test = runner.invoke(
        cli,
        [
            "--config",
            path,
            "preview",
            "--no-collect",
            "--out",
            str(tmp_path / "p"),
            "--send-to",
            "editor@example.com",
        ],
        env=env,
    )
    assert test.exit_code == 0, test.stderr
    assert "Sent a test copy to editor@example.com through outbox" in test.stdout
    copies = list((config.outbox_dir / "other").glob("*.eml"))
    assert any("Subject: [TEST]" in c.read_text() for c in copies)


def test_an_error_mid_send_keeps_what_the_requests_in_flight_did(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    templates = tmp_path / "templates"
    templates.mkdir()
    builtin = (ROOT / "templates/digest.txt.j2").read_text(encoding="utf-8")
    # a publisher's template that breaks only for the Oil & Gas readers (an undefined name)
    broken = '{% if sectors == ["Oil & Gas"] %}{{ no_such_value }}{% endif %}' + builtin
    (templates / "digest.txt.j2").write_text(broken, encoding="utf-8")
    settings: dict[str, object] = {
        "backend": "sendgrid",
        "batch_size": 5,
        "sendgrid": {"api_host": server.url, "concurrency": 3},
    }
    config = load_config(
        write_config(tmp_path, {"feeds": FEEDS, "delivery": settings, "templates": "templates"})
    )
    store = collected(config)
    # the ledger is seeded by sector choice: the EV readers' batches go first
    for n, sectors in enumerate([["evs-battery"]] * 40 + [["oil-gas"]] * 5):
        add_subscriber(
            store,
            f"reader{n}@example.com",
            sectors=sectors,
            known_sectors=config.sector_slugs,
            now=NOW,
        )
    server.delay = 0.3  # requests are in flight when the broken variant is met
    with pytest.raises(TemplateError):
        flows.send_edition(config, store, make_mailer(config), now=clock)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None
    sent = {r.email for r in store.ledger.deliveries_of(ref.id) if r.status == DeliveryStatus.SENT}
    assert sent and sent == set(server.recipients)  # every accepted request was recorded
    counts = store.ledger.delivery_counts(ref.id)
    assert DeliveryStatus.CLAIMED not in counts  # the rest went back to the queue
