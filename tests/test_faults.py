"""Issue 12's defects, each reproduced for real: nobody missed, nobody twice."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.delivery.mailers import make_mailer
from newsletter.errors import SubscriberError
from newsletter.models import DeliveryStatus, EditionStatus, Frequency, SendReport
from newsletter.models.readers import Slot
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from tests.conftest import NOW
from tests.sendgrid_server import SendgridServer, sendgrid_server
from tests.smtp_server import Inbox, start_smtp
from tests.test_send import (
    KEY,
    _send_process,
    _wait_for,
    add_readers,
    clock,
    collected,
    make_config,
)

BAD = ("josé@example.com", "=?utf-8?q?Ana=0D=0ABcc=3A_x=40evil.example?=")
# addresses no header can carry, as an older version may have stored them
UNCARRIED = (BAD[0], "a@b@c.example.com", "<x@example.com>", 'q"@x.com')


@pytest.fixture
def server() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key=KEY) as s:
        yield s


def _plant(store: Store) -> None:
    """Readers stored before addresses and names were checked at every entry point."""
    from sqlalchemy import insert, select

    from newsletter.store.tables import subscribers

    with store.engine.begin() as conn:
        row = dict(conn.execute(select(subscribers).limit(1)).mappings().one())
        del row["id"]
        planted = [*((email, "") for email in UNCARRIED), ("crlf@example.com", BAD[1])]
        for n, (email, name) in enumerate(planted, start=1):
            values = {**row, "email": email, "name": name, "token": f"planted-token-{n:040d}"}
            conn.execute(insert(subscribers).values(values))


def test_retry_failed_on_the_command_line_sends_to_the_failed_readers(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-11-25T06:00:00Z")
    # the faults meet one request; the retries wait 10 ms, 20 ms, ... instead of seconds
    sendgrid = {"api_host": server.url, "concurrency": 1, "backoff_seconds": 0.01}
    config = make_config(tmp_path, "sendgrid", batch_size=3, sendgrid=sendgrid)
    store = collected(config)
    add_readers(config, store, 9)
    store.close()
    server.faults.extend([("500", 0)] * 5)  # one batch fails through all its retries
    runner = CliRunner()
    args = ["--config", str(config.path), "send", "--no-collect"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 1 and "--retry-failed" in first.output
    assert len(server.recipients) == 6
    second = runner.invoke(cli, [*args, "--retry-failed"])
    assert second.exit_code == 0, second.output
    assert len(server.recipients) == 9 and set(server.recipients.values()) == {1}


@pytest.mark.parametrize("backend", ["outbox", "smtp", "sendgrid"])
def test_an_unencodable_reader_fails_alone(
    backend: str, tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    try:
        settings: dict[str, object] = {
            "batch_size": 20,
            "sendgrid": {"api_host": server.url},
            "smtp": {"host": "127.0.0.1", "port": port, "backoff_seconds": 0.01},
        }
        config = make_config(tmp_path, backend, **settings)
        store = collected(config)
        add_readers(config, store, 38)
        _plant(store)
        mailer = make_mailer(config)
        report = flows.send_edition(config, store, mailer, now=clock)
        mailer.close()
        # the planted name with a hidden line break is cleaned when sent (issue 24): only the
        # addresses that cannot go in a header fail, each alone
        assert (report.sent, report.failed) == (39, len(UNCARRIED))
        ref = store.editions.edition_ref(report.edition_date)
        assert ref is not None
        failed = {r.email: r.error for r in store.ledger.failed_deliveries(ref.id)}
        assert set(failed) == set(UNCARRIED)
        assert all(failed.values())
        reached = {
            "outbox": lambda: len(list((config.outbox_dir / "2026-11-25").glob("*.eml"))),
            "smtp": lambda: len(inbox.to),
            "sendgrid": lambda: len(server.recipients),
        }[backend]()
        assert reached == 39
        store.close()
    finally:
        controller.stop()


def test_addresses_and_names_are_checked_the_same_way_at_entry(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = Store.open(config.database_url)
    try:
        with pytest.raises(SubscriberError, match="outside ASCII"):
            add_subscriber(store, BAD[0], known_sectors=config.sector_slugs, now=clock())
        # a line break hidden in an encoded-word is decoded and becomes a space (issue 24)
        named, _ = add_subscriber(
            store, "a@example.com", name=BAD[1], known_sectors=config.sector_slugs, now=clock()
        )
        assert named.name == "Ana Bcc: x@evil.example"
        first, created = add_subscriber(
            store, "Ana@Example.com", known_sectors=config.sector_slugs, now=clock()
        )
        again, created_again = add_subscriber(
            store, "ana@example.COM", known_sectors=config.sector_slugs, now=clock()
        )
        assert created and not created_again and first.id == again.id
    finally:
        store.close()


def test_an_unquoted_send_time_is_an_error_naming_the_key(tmp_path: Path) -> None:
    from newsletter.config import load_config
    from newsletter.errors import ConfigError
    from tests.conftest import write_config

    path = write_config(tmp_path, {})
    path.write_text(path.read_text() + "schedule:\n  send_at: 7:00\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"schedule\.send_at.*\"07:00\"") as caught:
        load_config(path)
    assert "line" in str(caught.value)


def test_a_feed_url_without_a_host_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    from newsletter.config import load_config
    from newsletter.errors import ConfigError
    from tests.conftest import write_config

    path = write_config(tmp_path, {"feeds": [{"name": "Broken", "url": "http://"}]})
    with pytest.raises(ConfigError, match=r"feeds\[0\]\.url.*no host"):
        load_config(path)


def test_import_rejects_bad_lines_by_number_and_imports_the_rest(tmp_path: Path) -> None:
    import io

    from newsletter.readers.export import export_csv
    from newsletter.readers.roster import import_csv

    config = make_config(tmp_path)
    store = Store.open(config.database_url)
    rows = [
        "email,name,sectors",
        "ana@example.com,Ana,oil-gas",
        'big@example.com,"' + "x" * 140_000 + '",oil-gas',
        "nul@example.com,Bad\x00Name,",
        "José@example.com,José,",
        'Bo@Example.com,=HYPERLINK("https://evil.example"),',
        "bo@example.com,Bo again,",
        "cy@example.com,Cy,",
    ]
    path = tmp_path / "readers.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    try:
        report = import_csv(store, path, known_sectors=config.sector_slugs, now=clock())
        assert report.added == 4  # ana, nul (its name cleaned), bo (once, whatever the case), cy
        reasons = dict(report.rejected)
        assert set(reasons) == {3, 5, 7}
        assert "longer than" in reasons[3] or "CSV" in reasons[3]
        nul = store.readers.subscriber_by_email("nul@example.com")
        assert nul is not None and nul.name == "BadName"
        assert "outside ASCII" in reasons[5]
        assert "twice" in reasons[7]
        out = io.StringIO()
        export_csv(store, out)
        assert "'=HYPERLINK" in out.getvalue() and ",=HYPERLINK" not in out.getvalue()
    finally:
        store.close()


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]
)
@pytest.mark.slow
def test_send_stops_on_a_signal_after_the_request_in_flight_without_duplicates(
    tmp_path: Path, server: SendgridServer, signum: int
) -> None:
    # two requests of ten readers in flight at most: a stop leaves most readers unsent
    sendgrid = {"api_host": server.url}
    config = make_config(
        tmp_path, "sendgrid", batch_size=10, readers_in_flight=20, sendgrid=sendgrid
    )
    store = collected(config)
    add_readers(config, store, 80)
    store.close()
    server.delay = 0.3  # each request is in flight for a while
    process = _send_process(config.path, server)
    _wait_for(lambda: server.requests >= 2)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert "Stopped by a signal" in out.decode() and "newsletter send" in out.decode()
    assert 0 < len(server.recipients) < 80
    server.delay = 0.0
    rerun = _send_process(config.path, server)
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    assert len(server.recipients) == 80 and set(server.recipients.values()) == {1}


@pytest.mark.slow
def test_an_smtp_server_killed_mid_send_leaves_nobody_missed_or_twice(tmp_path: Path) -> None:

    from newsletter.errors import DeliveryError

    inbox = Inbox()
    controller, port = start_smtp(inbox)

    def kill_after(n: int) -> None:  # the server dies once it has accepted n messages
        inbox.wait_for(n)
        controller.stop()

    killer = threading.Thread(target=kill_after, args=(37,), daemon=True)
    killer.start()
    smtp = {"host": "127.0.0.1", "port": port, "timeout_seconds": 5, "backoff_seconds": 0.01}
    config = make_config(tmp_path, "smtp", batch_size=20, smtp=smtp)
    store = collected(config)
    add_readers(config, store, 90)
    mailer = make_mailer(config)
    try:
        with pytest.raises(DeliveryError, match="stopped mid-batch"):
            flows.send_edition(config, store, mailer, now=clock)
    finally:
        mailer.close()
    killer.join(timeout=10)
    accepted_before = list(inbox.to)
    assert 37 <= len(accepted_before) < 90
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = make_mailer(config)
        report = flows.send_edition(config, store, mailer, now=clock)
        mailer.close()
    finally:
        controller.stop()
        store.close()
    assert report.failed == 0
    assert sorted(inbox.to) == sorted(f"reader{i:03d}@example.com" for i in range(90))


def _one_batch_then_stop(tmp_path: Path, readers: int) -> tuple[Config, Store, SendReport]:
    """A send that stops once its first batch of five is recorded (a scheduler dying after
    one batch): the edition stays sending."""
    config = make_config(tmp_path, batch_size=5, readers_in_flight=5)
    store = collected(config)
    add_readers(config, store, readers)
    stop = threading.Event()
    report = flows.send_edition(
        config,
        store,
        make_mailer(config),
        now=clock,
        should_stop=stop.is_set,
        progress=lambda done, total: stop.set(),
    )
    return config, store, report


def test_an_edition_left_sending_is_finished_on_the_next_pass(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from newsletter.schedule.runner import Runner

    config, store, first = _one_batch_then_stop(tmp_path, 20)
    assert first.sent == 5 and first.stopped
    ref = store.editions.edition_ref(first.edition_date)
    assert ref is not None and ref.status == EditionStatus.SENDING
    store.close()
    runner = Runner(  # the tick comes soon after the send time (07:00 UTC)
        config,
        open_store=lambda: Store.open(config.database_url),
        make_mailer=lambda: make_mailer(config),
        clock=clock,
    )
    runner.send()
    store = Store.open(config.database_url)
    ref = store.editions.edition_ref(first.edition_date)
    assert ref is not None and ref.status == EditionStatus.SENT
    assert store.ledger.delivery_counts(ref.id) == {DeliveryStatus.SENT: 20}
    assert len(list((config.outbox_dir / "2026-11-25").glob("*.eml"))) == 20
    store.close()


def test_an_edition_left_sending_past_the_grace_is_reported_not_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import timedelta

    from newsletter.schedule.runner import Runner

    config, store, _ = _one_batch_then_stop(tmp_path, 10)
    late = clock() + timedelta(days=1)
    with caplog.at_level("WARNING", logger="newsletter.run"):
        runner = Runner(
            config,
            open_store=lambda: Store.open(config.database_url),
            make_mailer=lambda: make_mailer(config),
            clock=lambda: late,
        )
        assert runner.send() == []
    assert "was interrupted and is past the 3:00:00 grace" in caplog.text
    assert "send --date 2026-11-25" in caplog.text
    ref = store.editions.edition_ref(date(2026, 11, 25))
    assert ref is not None and store.ledger.delivery_counts(ref.id)[DeliveryStatus.PENDING] == 5
    store.close()


def _at(when: datetime) -> Callable[[], datetime]:
    return lambda: when


@pytest.mark.parametrize(
    ("smtp", "said", "setting"),
    [
        ({"security": "starttls"}, "does not offer STARTTLS", "delivery.smtp.security"),
        ({"security": "tls"}, "did not answer in TLS", "delivery.smtp.security"),
        ({"username": "bob"}, "offers no login", "delivery.smtp.username"),
    ],
)
def test_an_smtp_setting_the_server_does_not_match_stops_the_send_with_what_to_change(
    tmp_path: Path, smtp: dict[str, str], said: str, setting: str
) -> None:
    """Running the send again would change nothing: the send stops at once, every reader
    still to send, and the error names the setting (exit 3, the configuration's)."""
    inbox = Inbox()
    controller, port = start_smtp(inbox)  # plain text, no AUTH: a local relay
    try:
        server = {"host": "127.0.0.1", "port": port, "timeout_seconds": 5, **smtp}
        config = make_config(tmp_path, "smtp", smtp=server)
        store = collected(config)
        add_readers(config, store, 3)
        store.close()
        result = CliRunner().invoke(
            cli,
            ["--config", str(config.path), "send", "--no-collect"],
            env={"NEWSLETTER_NOW": "2026-11-25T06:00:00Z", "SMTP_PASSWORD": "not-used"},
        )
    finally:
        controller.stop()
    assert result.exit_code == 3, result.output
    assert said in result.stderr and setting in result.stderr
    assert "run `newsletter send` again" not in result.stderr and inbox.to == []


def test_an_outbox_folder_that_is_a_file_stops_the_send_with_what_to_change(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, "outbox")
    store = collected(config)
    add_readers(config, store, 3)
    store.close()
    config.outbox_dir.parent.mkdir(parents=True, exist_ok=True)
    config.outbox_dir.write_text("not a folder", encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--config", str(config.path), "send", "--no-collect"],
        env={"NEWSLETTER_NOW": "2026-11-25T06:00:00Z"},
    )
    assert result.exit_code == 3, result.output
    assert "cannot be made" in result.stderr and "delivery.outbox.dir" in result.stderr
    assert "run `newsletter send` again" not in result.stderr


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made a read-only file system for real (a bind mount; root in CI)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only folder here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_an_outbox_on_a_read_only_file_system_keeps_the_readers_for_the_next_run(
    tmp_path: Path,
) -> None:
    """The edition's folder exists but its file system turned read-only: no file can be made
    (nor a half-written one removed, which raised the file system's error past the send)."""
    config = make_config(tmp_path, "outbox")
    store = collected(config)
    add_readers(config, store, 3)
    store.close()
    env = {"NEWSLETTER_NOW": "2026-11-25T06:00:00Z"}
    with read_only(config.outbox_dir / "2026-11-25"):
        args = ["--config", str(config.path), "send", "--no-collect"]
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 1, result.output
        assert "cannot be written: Read-only file system" in result.stderr
        assert "run `newsletter send` again" in result.stderr
    again = CliRunner().invoke(cli, ["--config", str(config.path), "send", "--no-collect"], env=env)
    assert again.exit_code == 0, again.output
    assert len(list((config.outbox_dir / "2026-11-25").glob("*.eml"))) == 3


def test_a_weekly_editions_failures_show_in_status_and_retry_failed_sends_them(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A weekly reader whose delivery failed is counted by `status` and sent by
    `send --retry-failed`, which builds no edition of its own (a retry has none to send)."""
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-11-25T07:00:10Z")  # a Wednesday
    sendgrid = {"api_host": server.url, "concurrency": 1, "max_retries": 0}
    config = make_config(tmp_path, "sendgrid", sendgrid=sendgrid)
    store = collected(config)
    weekly = Slot(frequency=Frequency.WEEKLY, weekday=2)
    add_subscriber(store, "wk@example.com", known_sectors=(), now=NOW, slot=weekly)
    store.close()
    server.faults.append(("500", 0))
    runner = CliRunner()
    base = ["--config", str(config.path), "send", "--no-collect"]
    assert runner.invoke(cli, [*base, "--due"]).exit_code == 1 and not server.recipients
    status = runner.invoke(cli, ["--config", str(config.path), "status"]).stdout
    (row,) = [line for line in status.splitlines() if "weekly" in line]
    assert row.split()[-4:] == ["0", "1", "0", "0"]  # sent, failed, skipped, waiting
    retried = runner.invoke(cli, [*base, "--retry-failed"])
    assert retried.exit_code == 0, retried.output
    assert list(server.recipients) == ["wk@example.com"]
    store = Store.open(config.database_url)
    assert store.editions.edition(date(2026, 11, 25)) is None  # no daily edition was made
    store.close()


def test_a_send_of_a_daily_and_a_weekly_edition_says_which_line_is_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-11-25T07:00:10Z")  # a Wednesday, both due
    config = make_config(tmp_path, "outbox")
    store = collected(config)
    weekly = Slot(frequency=Frequency.WEEKLY, weekday=2)
    add_subscriber(store, "wk@example.com", known_sectors=(), now=NOW, slot=weekly)
    add_subscriber(store, "day@example.com", known_sectors=(), now=NOW)
    store.close()
    result = CliRunner().invoke(
        cli, ["--config", str(config.path), "send", "--no-collect", "--due"]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("Sent: ")]
    assert len(lines) == 2
    assert any(line.startswith("Sent: edition of 2026-11-25: 1 reader sent") for line in lines)
    assert any(line.startswith("Sent: weekly edition of 2026-11-25: 1 reader") for line in lines)
    # and `stats` counts both: the weekly's readers, bounces and complaints count too
    shown = CliRunner().invoke(cli, ["--config", str(config.path), "stats", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert sorted((r["date"], r["kind"]) for r in rows) == [
        ("2026-11-25", "daily"),
        ("2026-11-25", "weekly"),
    ]
    assert all(r == {**r, **dict(sent=1)} for r in rows)  # one reader each
    table = CliRunner().invoke(cli, ["--config", str(config.path), "stats"]).stdout
    assert "2026-11-25 weekly" in table


def test_retry_failed_leaves_an_edition_no_send_has_begun_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frozen (or approved) edition that no send has begun has no delivery to retry: a
    retry would close it as sent to nobody."""
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-11-25T06:00:00Z")
    config = make_config(tmp_path, "outbox")
    store = collected(config)
    add_readers(config, store, 2)
    frozen = flows.frozen_edition(config, store, now=NOW, day=NOW.date())
    args = ["--config", str(config.path), "send", "--no-collect", "--retry-failed"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 5 and "no delivery to retry" in result.stderr, result.output
    again = store.editions.edition(NOW.date())
    assert again is not None and again.status == frozen.status == EditionStatus.FROZEN
    store.close()
