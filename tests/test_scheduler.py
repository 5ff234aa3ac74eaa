"""`newsletter run`: triggers across daylight saving, the jobs with an injected clock, and the
real scheduler in a subprocess (one short run here; the restarts around a missed send are slow)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.config.settings import ScheduleConfig
from newsletter.delivery.mailers import make_mailer
from newsletter.models import EditionStatus
from newsletter.models.readers import Slot
from newsletter.readers.subscriptions import add_subscriber
from newsletter.readers.timing import due_at, sends_on
from newsletter.schedule.lease import Lease
from newsletter.schedule.runner import ROLES, Runner, next_runs, send_trigger
from newsletter.store import Store
from tests.conftest import DEMO, ROOT, write_config
from tests.feedserver import FeedServer
from tests.smtp_server import Inbox


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        ("Europe/London", date(2026, 3, 27), (0, 1)),  # clocks go forward 29 Mar
        ("Europe/London", date(2026, 10, 23), (1, 0)),  # and back 25 Oct
        ("America/New_York", date(2026, 3, 6), (-5, -4)),  # forward 8 Mar
        ("America/New_York", date(2026, 10, 30), (-4, -5)),  # back 1 Nov
    ],
)
def test_the_send_stays_at_local_seven_across_daylight_saving(
    zone: str, before: date, after: tuple[int, int]
) -> None:
    schedule = ScheduleConfig(send_at=dtime(7, 0), timezone=zone)
    offsets = []
    for n in range(6):
        local = due_at(Slot(), before + timedelta(days=n), schedule).astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute, local.second) == (7, 0, 0)
        offsets.append(int(local.utcoffset().total_seconds() // 3600))  # type: ignore[union-attr]
    assert offsets[0] == after[0] and offsets[-1] == after[1]  # the UTC hour moved, not 07:00


def test_weekdays_only() -> None:
    schedule = ScheduleConfig(send_at=dtime(6, 30), weekdays=["mon", "fri"])
    days = [date(2026, 11, 25) + timedelta(days=n) for n in range(6)]  # Wednesday on
    sent = [d for d in days if sends_on(Slot(), d, schedule)]
    assert sent == [date(2026, 11, 27), date(2026, 11, 30)]  # Friday, Monday
    assert due_at(Slot(), sent[0], schedule) == datetime(2026, 11, 27, 6, 30, tzinfo=UTC)


READERS = 3


def _config(
    tmp_path: Path,
    send_at: datetime,
    grace_minutes: float = 180,
    joined: datetime | None = None,
    **schedule: float,
) -> Config:
    """A publication of ``READERS`` readers, who joined at ``joined`` (a day before ``send_at``
    unless told)."""
    feeds = [{"name": p.stem, "url": str(p)} for p in sorted((DEMO / "feeds").glob("*.xml"))]
    path = write_config(
        tmp_path,
        {
            "feeds": feeds,
            "digest": {"max_age_hours": 1000000},
            "schedule": {
                "send_at": send_at.strftime("%H:%M:%S"),
                "timezone": "UTC",
                "collect_every_minutes": 60,
                "misfire_grace_minutes": grace_minutes,
                **schedule,
            },
        },
    )
    config = load_config(path)
    store = Store.open(config.database_url)
    for i in range(READERS):
        add_subscriber(
            store,
            f"r{i}@example.com",
            known_sectors=config.sector_slugs,
            now=joined or send_at - timedelta(days=1),
        )
    store.close()
    return config


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _runner(config: Config, clock: _Clock) -> Runner:
    return Runner(
        config,
        open_store=lambda: Store.open(config.database_url),
        make_mailer=lambda: make_mailer(config),
        clock=clock,
    )


def test_the_send_job_sends_once_with_the_clock_it_is_given(tmp_path: Path) -> None:
    day = datetime(2026, 11, 25, 7, 0, 5, tzinfo=UTC)
    config = _config(tmp_path, day)
    runner = _runner(config, _Clock(day))
    runner.send()
    assert sorted(p.parent.name for p in _outbox(config)) == ["2026-11-25"] * READERS
    runner.send()  # a second run of the same day's job sends nothing twice
    assert len(_outbox(config)) == READERS
    store = Store.open(config.database_url)
    ref = store.editions.edition_ref(day.date())
    store.close()
    assert ref is not None and ref.status == EditionStatus.SENT


def test_a_send_missed_past_the_grace_says_by_how_much_and_how_to_send(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    due = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    config = _config(tmp_path, due, grace_minutes=30)
    runner = _runner(config, _Clock(due + timedelta(hours=2, minutes=5)))
    with caplog.at_level("WARNING", logger="newsletter.run"):
        assert runner.send() == []
        runner.send()  # said once, not at every pass
    assert _outbox(config) == []
    assert caplog.text.count("was due from 2026-11-25 07:00 UTC, past the 0:30:00 grace") == 1
    assert "so nothing was sent" in caplog.text
    assert f"newsletter --config {config.path} send --date 2026-11-25" in caplog.text


def test_a_missed_day_no_edition_can_be_built_for_says_so_and_offers_no_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    due = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # yesterday's slot, today at 09:05
    config = _config(tmp_path, due, grace_minutes=30)
    runner = _runner(config, _Clock(due + timedelta(days=1, hours=2, minutes=5)))
    with caplog.at_level("WARNING", logger="newsletter.run"):
        runner.send()
    assert "the daily edition of 2026-11-24 was due from 2026-11-24 07:00 UTC" in caplog.text
    assert "its readers get the next edition" in caplog.text
    assert "send --date 2026-11-24" not in caplog.text  # it would only be refused


def test_readers_of_a_slot_past_the_grace_are_counted_in_words(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    due = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    config = _config(tmp_path, due, grace_minutes=30, delivery_hours=[7, 9])  # type: ignore[arg-type]
    store = Store.open(config.database_url)
    add_subscriber(
        store, "nine@example.com", known_sectors=(), now=due - timedelta(days=1), slot=Slot(hour=9)
    )
    store.close()
    runner = _runner(config, _Clock(due + timedelta(hours=2, minutes=5)))  # 09:05
    with caplog.at_level("WARNING", logger="newsletter.run"):
        runner.send()
    assert [p.name for p in _outbox(config)] == ["00000004.eml"]  # the 09:00 reader only
    said = " ".join(caplog.text.split())
    assert f"send: {READERS} readers of the daily edition of 2026-11-25 were due more" in said
    assert "ago and were not sent to now" in said


def test_a_new_publication_hears_nothing_of_days_before_its_readers_joined(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    due = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    now = due + timedelta(hours=2, minutes=5)  # the first start, past the day's hour
    config = _config(tmp_path, due, grace_minutes=30, joined=now - timedelta(minutes=1))
    runner = _runner(config, _Clock(now))
    with caplog.at_level("WARNING", logger="newsletter.run"):
        assert runner.send() == []
    assert "was due" not in caplog.text and _outbox(config) == []


class _Run:
    """``newsletter run`` in a subprocess, its output read as it comes. Every one started is
    killed at the end of its test if still running (``_no_leftovers``)."""

    started: ClassVar[list[_Run]] = []

    def __init__(self, config: Config, *args: str, host: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_NOW"}
        if host is not None:  # another machine, as the locks and claims see it
            env["NEWSLETTER_HOST"] = host
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "--config", str(config.path), "run", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, args=(pipe,), daemon=True)
            for pipe in (self.process.stdout, self.process.stderr)
        ]
        for reader in self.readers:
            reader.start()
        _Run.started.append(self)

    def _read(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: any(text in x for x in self.lines), timeout)

    def output(self) -> str:
        with self.changed:
            return "".join(self.lines)

    def count(self, text: str) -> int:
        with self.changed:
            return sum(text in x for x in self.lines)

    def wait_for_count(self, text: str, count: int, timeout: float = 60) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count(text) >= count, timeout)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.close()

    def close(self) -> None:
        for reader in self.readers:
            reader.join(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0, self.output()
        self.close()
        return self.output()


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
    while _Run.started:
        left = _Run.started.pop()
        if left.process.poll() is None:
            left.kill()


def _outbox(config: Config) -> list[Path]:
    return sorted(config.outbox_dir.glob("*/*.eml"))


@pytest.mark.slow
def test_run_sends_at_the_time_alone_and_stops_on_sigterm(tmp_path: Path) -> None:
    # the send is due 10 s after the start: time for the process to be up and scheduling
    # even on a loaded machine (started after it, the job would wait for tomorrow)
    config = _config(tmp_path, datetime.now(UTC) + timedelta(seconds=10))
    run = _Run(config)
    try:
        assert run.wait_for("next send"), run.output()
        second = _Run(config)  # one scheduler per database
        assert second.process.wait(timeout=60) == 1
        second.close()
        assert "Error: another `newsletter run` (" in second.output()
        assert f":{run.process.pid} since" in second.output()
        assert run.wait_for("send: daily edition of"), run.output()
        assert len(_outbox(config)) == READERS
        (sent,) = [line for line in run.output().splitlines() if "send: daily edition" in line]
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO newsletter", sent), sent
        out = run.stop()
    finally:
        if run.process.poll() is None:  # a failed check: never leave the scheduler running
            run.kill()
    assert "stopping: finishing the batch in flight" in out and "stopped" in out
    runs = {r.job: r.at for r in next_runs(config.database_url)}
    send = runs.get("send")
    assert set(runs) == {"collect", "send"} and send is not None and send > datetime.now(UTC)
    status = CliRunner().invoke(cli, ["--config", str(config.path), "status"])
    today = _outbox(config)[0].parent.name
    tomorrow = date.fromisoformat(today) + timedelta(days=1)
    following = due_at(Slot(), tomorrow, config.file.schedule)  # today's readers are done
    assert f"Next send: {following:%Y-%m-%d %H:%M:%S} UTC" in status.stdout
    assert f"daily {tomorrow}" in status.stdout  # the buckets still to send
    assert "Next collect: " in status.stdout
    assert "No scheduler is running" in " ".join(status.stdout.split())  # it was stopped


@pytest.mark.slow  # in `pytest -m slow` (.ci/run runs it): a heavy real run
def test_a_standby_on_another_host_takes_over_within_the_lease(tmp_path: Path) -> None:
    lease = 3.0
    config = _config(
        tmp_path,
        datetime.now(UTC) + timedelta(hours=3),
        collect_every_minutes=0.05,  # a collect every 3 s: a scheduler shows it runs jobs
        lease_seconds=lease,
    )
    first = _Run(config, host="host-a")
    assert first.wait_for("next collect"), first.output()
    standby = _Run(config, "--standby", host="host-b")
    assert standby.wait_for(f"standby: host-a:{first.process.pid} since"), standby.output()
    ran = first.count("collect: ")
    # two more collects (two leases' time) on the first, none on the standby
    assert first.wait_for_count("collect: ", ran + 2), first.output()
    assert standby.count("collect: ") == 0 and "took over" not in standby.output()
    status = CliRunner().invoke(cli, ["--config", str(config.path), "status"]).stdout
    for role in ("collect", "send"):  # who runs each job, as status shows it
        assert f"Scheduler ({role}): host-a:{first.process.pid}, since " in status
    killed = datetime.now(UTC)
    first.kill()  # on another host: no PID to check, only the heartbeat going silent
    assert standby.wait_for("standby: took over at "), standby.output()
    (line,) = [x for x in standby.lines if "took over at " in x]
    taken = datetime.fromisoformat(line.split("took over at ")[1].strip())
    # the lease from the last beat before the kill (at most the lease after it), plus one look
    # every tenth of it, plus a second for a loaded machine
    assert taken - killed <= timedelta(seconds=lease * 1.1 + 1), (killed, taken)
    assert standby.wait_for("collect: "), standby.output()  # it runs the jobs now
    assert standby.wait_for("next send"), standby.output()
    third = _Run(config, "--standby", host="host-c")  # stands by for the new holder
    assert third.wait_for(f"standby: host-b:{standby.process.pid} since"), third.output()
    assert "stopped while standing by" in third.stop()
    out = standby.stop()
    assert "stopped: " in out
    assert {r.job for r in next_runs(config.database_url)} == {"collect", "send"}


def test_a_scheduler_that_finds_its_lock_taken_over_stops(tmp_path: Path) -> None:
    config = _config(tmp_path, datetime.now(UTC) + timedelta(hours=3))
    store = Store.open(config.database_url)
    clock = _Clock(datetime(2026, 12, 1, 6, tzinfo=UTC))
    first = Lease(store, "host-a:1", ROLES, 0.3, clock)
    second = Lease(store, "host-b:2", ROLES, 0.3, clock)
    assert first.take() is None  # taken
    held = second.take()
    assert held is not None and held[0] == "collect" and held[1].holder == "host-a:1"
    clock.at += timedelta(seconds=1)  # host-a cut off from the database past the lease
    assert second.take() is None
    stop = threading.Event()
    first.keep(stop)  # its next beat finds the rows host-b's
    assert first.lost and stop.is_set()
    second.release()
    assert first.take() is None  # free again once released
    store.close()


@pytest.mark.slow
def test_collecting_and_sending_on_different_machines(tmp_path: Path) -> None:
    config = _config(
        tmp_path, datetime.now(UTC) + timedelta(seconds=15), collect_every_minutes=0.05
    )
    collector = _Run(config, "--only", "collect", host="collector")
    sender = _Run(config, "--only", "send", host="sender")
    assert sender.wait_for("next send"), sender.output()
    assert collector.wait_for("collect: "), collector.output()  # the first tick, 3 s in
    second = _Run(config, "--only", "send", host="sender-2")  # one sender per database
    assert second.process.wait(timeout=60) == 1
    second.close()
    assert "is already running the send job" in second.output()
    assert sender.wait_for("send: daily edition of"), sender.output()
    assert len(_outbox(config)) == READERS  # the collector's stories, sent by the sender
    assert "next send" not in collector.output() and "collect: " not in sender.output()
    stopped = collector.stop()  # a collector has no edition to finish
    last = stopped.strip().splitlines()[-1]
    assert "stopped" in last and "edition" not in last, last
    assert "an edition left unfinished is finished" in sender.stop()


@pytest.mark.slow
def test_a_restart_after_a_kill_sends_nothing_twice(tmp_path: Path) -> None:
    config = _config(tmp_path, datetime.now(UTC) + timedelta(seconds=8))
    run = _Run(config)
    assert run.wait_for("send: daily edition of"), run.output()
    run.kill()
    again = _Run(config)
    assert again.wait_for("collect: "), again.output()  # the first tick, after any catch-up
    out = again.stop()
    assert len(_outbox(config)) == READERS and "send: daily edition of" not in out


@pytest.mark.slow
def test_a_send_missed_while_down_runs_on_restart_within_the_grace(tmp_path: Path) -> None:
    # the readers' hour passed five minutes ago, while no scheduler ran
    config = _config(tmp_path, datetime.now(UTC) - timedelta(minutes=5))
    assert _outbox(config) == []
    restarted = _Run(config)
    assert restarted.wait_for("send: daily edition of"), restarted.output()
    restarted.stop()
    assert len(_outbox(config)) == READERS  # once


@pytest.mark.slow
def test_a_send_missed_past_the_grace_is_skipped_on_restart(tmp_path: Path) -> None:
    due = datetime.now(UTC) - timedelta(minutes=10)  # down past the send time and its grace
    config = _config(tmp_path, due, grace_minutes=1)
    restarted = _Run(config)
    assert restarted.wait_for("so nothing was sent"), restarted.output()
    err = restarted.stop()
    assert _outbox(config) == []
    assert f"was due from {due:%Y-%m-%d %H:%M} UTC, past the 0:01:00 grace" in err
    assert f"newsletter --config {config.path.resolve()} send --date {due.date()}" in err


@pytest.mark.slow
def test_a_job_stored_by_an_earlier_version_is_moved_to_the_pass(
    tmp_path: Path,
) -> None:
    """Deployments upgraded with jobs stored as ``newsletter.scheduler:send_job`` find them
    resolved and moved to the pass."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    from newsletter.schedule import runner as schedule_runner
    from newsletter.scheduler import send_job as old_name

    assert old_name is schedule_runner.send_job  # the old reference still resolves
    config = _config(tmp_path, datetime(2026, 11, 25, 7, 0, tzinfo=UTC))
    earlier = BackgroundScheduler(
        jobstores={
            "send": SQLAlchemyJobStore(url=config.database_url, tablename="apscheduler_jobs")
        },
        timezone="UTC",
    )
    earlier.start(paused=True)
    trigger = CronTrigger(hour=7, minute=0, timezone="UTC")  # the daily send of earlier versions
    earlier.add_job(
        "newsletter.scheduler:send_job",
        trigger,
        args=[str(config.path.resolve())],
        id="send",
        name="send",
        jobstore="send",
        misfire_grace_time=int(config.file.schedule.misfire_grace_minutes * 60),
        coalesce=True,
        max_instances=1,
    )
    earlier.shutdown()
    run = _Run(config, "--only", "send")
    assert run.wait_for("next send"), run.output()
    run.stop()
    jobs = SQLAlchemyJobStore(url=config.database_url, tablename="apscheduler_jobs")
    jobs.start(None, "send")
    try:
        (job,) = jobs.get_all_jobs()
    finally:
        jobs.shutdown()
    assert job.func_ref == "newsletter.schedule.runner:send_job"
    assert str(job.trigger) == str(send_trigger())  # the pass replaced the daily trigger


def test_the_late_warning_names_only_slots_whose_readers_were_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At 10:05 the 07:00 slot was sent and the 06:00 slot's reader joined after 06:00: only
    the 09:00 slot's reader was left out, and only that slot is named."""
    due = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    config = _config(tmp_path, due, grace_minutes=30, delivery_hours=[6, 7, 9])  # type: ignore[arg-type]
    store = Store.open(config.database_url)
    add_subscriber(
        store, "nine@example.com", known_sectors=(), now=due - timedelta(days=1), slot=Slot(hour=9)
    )
    add_subscriber(  # joined at 06:45, after the 06:00 slot
        store,
        "six@example.com",
        known_sectors=(),
        now=due - timedelta(minutes=15),
        slot=Slot(hour=6),
    )
    store.close()
    clock = _Clock(due + timedelta(seconds=5))
    runner = _runner(config, clock)
    runner.send()  # 07:00: the 07:00 readers
    clock.at = due + timedelta(hours=3, minutes=5)  # 10:05
    with caplog.at_level("WARNING", logger="newsletter.run"):
        runner.send()
    said = " ".join(caplog.text.split())
    assert "send: 1 reader of the daily edition of 2026-11-25 was due more" in said
    assert "(09:00 UTC)" in said, said


def _one_reader_at_seven(tmp_path: Path, **settings: object) -> tuple[Runner, _Clock]:
    """A publication sending at 07:00 UTC to one reader, and its scheduler at 07:00:05."""
    due = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    schedule = {"send_at": "07:00", "timezone": "UTC", "collect_every_minutes": 60}
    config = load_config(write_config(tmp_path, {"schedule": schedule, **settings}))
    store = Store.open(config.database_url)
    add_subscriber(store, "r@example.com", known_sectors=(), now=due - timedelta(days=1))
    store.close()
    clock = _Clock(due + timedelta(seconds=5))
    return _runner(config, clock), clock


def test_a_day_with_no_edition_yet_is_not_collected_again_at_every_pass(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """The send's pass collects once more before it freezes a day's edition; while the day
    has none to build, the passes after it (every 15 s) leave the feeds to the collect job."""
    quiet = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Q</title></channel></rss>'
    url = feed_server.add("/quiet.xml", quiet)
    runner, clock = _one_reader_at_seven(tmp_path, feeds=[{"name": "Quiet", "url": url}])
    for _ in range(3):
        assert runner.send() == []
        clock.at += timedelta(seconds=15)
    assert [p for p, _ in feed_server.requests] == ["/quiet.xml"]


def test_a_mail_server_that_is_down_is_said_once_and_its_return_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every pass (15 s) tries again; the log says the outage once, in the scheduler's words
    (no "run `newsletter send`": it is already trying), and once that sending works again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    smtp = {"host": "127.0.0.1", "port": port, "max_retries": 0, "timeout_seconds": 5}
    runner, clock = _one_reader_at_seven(
        tmp_path,
        feeds=[{"name": p.stem, "url": str(p)} for p in sorted(DEMO.glob("feeds/*.xml"))],
        digest={"max_age_hours": 1000000},
        delivery={"backend": "smtp", "preflight": False, "smtp": smtp},
    )
    with caplog.at_level("INFO", logger="newsletter.run"):
        for _ in range(3):
            assert runner.send() == []
            clock.at += timedelta(seconds=15)
        down = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(down) == 1 and "cannot connect to SMTP server" in down[0], down
        assert "the scheduler tries again" in down[0] and "newsletter send" not in down[0]
        runner.stop.set()  # a SIGTERM: the pass ends before sending, which proves nothing
        assert [r.sent for r in runner.send()] in ([], [0])
        runner.stop.clear()
        assert "works again" not in caplog.text
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            (report,) = runner.send()
        finally:
            controller.stop()
    assert report.sent == 1 and len(inbox.messages) == 1
    assert "send: sending works again" in caplog.text
