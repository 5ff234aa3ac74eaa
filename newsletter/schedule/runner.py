"""``newsletter run``: APScheduler 3 in the foreground. Wiring only.

Two jobs, kept in the project's database by APScheduler's SQLAlchemy job store: ``collect``
every ``schedule.collect_every_minutes``, and ``send``: a pass every ``PASS_SECONDS`` that
delivers each edition to the readers whose local hour has come (``flows.buckets``): the
edition of a date is built and frozen at its first delivery, in the earliest zone (collecting
once more first), and every reader gets it at their own hour, weekly readers on their day. A
pass finds what an earlier one left (the scheduler killed mid-bucket, a restart after a
downtime) in the ledger: pending rows are sent, slots still within
``schedule.misfire_grace_minutes`` are sent late, older ones are skipped with a log line that
says how to send late. SIGTERM and SIGINT finish the requests in flight, record them, and exit.

A scheduler plays one role or both (``run --only collect|send``), so collecting and sending can
live on different machines. Each role has a lock row in the database held by heartbeat (a lease:
``schedule.lease_seconds``, beaten every third of it) and its own job table, so exactly one
scheduler runs each job for a database. A second one exits, or with ``--standby`` waits and
takes over once the holder has been silent for the lease; a holder that finds its lock taken
(it was cut off from the database longer than the lease) stops.

A ``Runner`` holds what the jobs work with, given by the face: a store factory, a mailer
factory, the clock, and its own stop event. APScheduler's job store keeps each job as a
reference to a module-level function (``collect_job``, ``send_job``, called with the config's
path), which hands the job to the runner started for that config in this process: only
APScheduler's public API is used. Jobs an earlier version stored as
``newsletter.scheduler:send_job`` still resolve (``newsletter/scheduler.py``) and are moved to
the new reference; a send job stored with the daily trigger of earlier versions is replaced by
the pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_ERROR
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.config import Config
from newsletter.config.settings import ScheduleConfig
from newsletter.errors import NewsletterError, ScheduleError
from newsletter.models import FetchOutcome, SendReport
from newsletter.schedule.lease import Lease, owner, stand_by

if TYPE_CHECKING:
    from newsletter.delivery.mailers import Mailer
    from newsletter.store import Store

logger = logging.getLogger("newsletter.run")

ROLES = ("collect", "send")
JOBS_TABLES = {"collect": "apscheduler_collect", "send": "apscheduler_jobs"}  # jobs per role


PASS_SECONDS = 15  # between the send's passes: a reader's hour is met within this


def send_trigger() -> CronTrigger:
    """The send's pass, at every quarter of a minute (UTC): local hours fall on any minute
    (Asia/Kolkata's 07:00 is 01:30 UTC)."""
    return CronTrigger(second=f"*/{PASS_SECONDS}", timezone="UTC")


def collect_trigger(schedule: ScheduleConfig) -> IntervalTrigger:
    return IntervalTrigger(seconds=schedule.collect_every_minutes * 60, timezone="UTC")


# the runner this process started for a config (by its path): where the stored jobs go.
# APScheduler's persistent job stores need a module-level callable; this is their one link
# to the runner's collaborators.
_RUNNERS: dict[str, Runner] = {}


def collect_job(config_path: str) -> None:
    """The stored collect job: the runner of this config collects."""
    _runner_for(config_path).collect()


def send_job(config_path: str) -> None:
    """The stored send job: the runner of this config sends."""
    _runner_for(config_path).send()


def _runner_for(config_path: str) -> Runner:
    runner = _RUNNERS.get(config_path)
    if runner is None:
        raise ScheduleError(
            f"the job for {config_path} runs through `newsletter run` only",
            hint=f"Start the scheduler: newsletter --config {config_path} run",
        )
    return runner


@dataclass
class Runner:
    """The scheduler's jobs, with the collaborators the face gave them."""

    config: Config
    open_store: Callable[[], Store]
    make_mailer: Callable[[], Mailer]
    clock: Callable[[], datetime]
    roles: tuple[str, ...] = ROLES  # the roles it plays, in ROLES order
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        from newsletter.flows.buckets import Pass

        self._pass = Pass(now=self.clock, should_stop=self.stop.is_set)
        self._failed: str | None = None  # what the last pass failed with, said once

    @contextmanager
    def _store(self) -> Iterator[Store]:
        store = self.open_store()
        try:
            yield store
        finally:
            store.close()

    def collect(self) -> None:
        """The collect job: every feed; then, when they brought something new, the article
        pages of the stories that want a teaser (off the collection's path: the send's passes
        and the freeze's own collection never wait for them); then the brief written ahead."""
        from newsletter import flows
        from newsletter.flows.build import build

        with self._store() as store:
            report = flows.collect_all(self.config, store, now=self.clock())
            failed = sum(
                r.status in {FetchOutcome.FAILED, FetchOutcome.GONE} for r in report.results
            )
            logger.info(
                "collect: %d feeds, %d new stories, %d failed (%.1f s)",
                len(report.results),
                sum(r.new for r in report.results),
                failed,
                report.seconds,
            )
            if any(r.new or r.updated for r in report.results):  # nothing new: no page work
                started = time.perf_counter()
                pages = flows.fetch_teasers(self.config, store, now=self.clock())
                if pages:
                    logger.info(
                        "teasers: %d article pages read (%.1f s)",
                        pages,
                        time.perf_counter() - started,
                    )
            if self.config.file.writer.base_url:  # write the brief ahead, so the send need not
                try:
                    build(self.config, store, now=self.clock())
                except NewsletterError as exc:  # the collect stands; the send will say it too
                    logger.warning("writing ahead: %s (%s)", exc.message, exc.hint or "")

    def send(self) -> list[SendReport]:
        """The send's pass: every edition to the readers whose hour has come
        (``flows.buckets``); a runner that collects collects once more before a freeze."""
        from newsletter.flows.buckets import send_due

        with self._store() as store:
            before = (
                (lambda: self._collect_before_freeze(store)) if "collect" in self.roles else None
            )
            self._pass.before_freeze = before
            try:
                reports = send_due(self.config, store, self.make_mailer, self._pass)
            except NewsletterError as exc:
                self._failing(exc)
                return []
        # a pass that sent proves sending works; one stopped by a signal, or with nobody due, not
        if self._failed is not None and any(r.sent for r in reports):
            logger.warning("send: sending works again")
            self._failed = None
        return reports

    def _failing(self, exc: NewsletterError) -> None:
        """A pass that failed: said once while it fails the same way (the passes go on every
        15 seconds and try again; the hint to run `send` by hand is not the scheduler's)."""
        if exc.message != self._failed:
            logger.error("send: %s (the scheduler tries again at every pass)", exc.message)
            self._failed = exc.message

    def _collect_before_freeze(self, store: Store) -> None:
        from newsletter import flows

        flows.collect_all(self.config, store, now=self.clock())


@dataclass(frozen=True, slots=True)
class NextRun:
    job: str
    at: datetime | None  # None: paused


def next_runs(database_url: str) -> list[NextRun]:
    """The scheduled jobs and their next run, as APScheduler's job stores have them."""
    runs = []
    for role, table in JOBS_TABLES.items():
        jobs = SQLAlchemyJobStore(url=database_url, tablename=table)
        try:
            jobs.start(None, role)  # creates the job table if there is none yet
            runs += [NextRun(j.id, j.next_run_time) for j in jobs.get_all_jobs() if j.id == role]
        finally:
            jobs.shutdown()
    return sorted(runs, key=lambda r: r.job)


def _scheduler(runner: Runner) -> BackgroundScheduler:
    config = runner.config
    path = str(config.path.resolve())
    schedule = config.file.schedule
    roles = runner.roles
    scheduler = BackgroundScheduler(
        jobstores={
            r: SQLAlchemyJobStore(url=config.database_url, tablename=JOBS_TABLES[r]) for r in roles
        },
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=schedule.timezone,
    )
    scheduler.add_listener(
        lambda event: logger.error("%s: failed: %s", event.job_id, event.exception),
        EVENT_JOB_ERROR,
    )
    scheduler.start(paused=True)
    if "collect" in roles:
        _ensure_job(scheduler, collect_job, collect_trigger(schedule), path, grace=60)
    if "send" in roles:
        if scheduler.get_job("collect", jobstore="send") is not None:
            scheduler.remove_job("collect", jobstore="send")  # where earlier versions kept it
        _ensure_job(scheduler, send_job, send_trigger(), path, grace=PASS_SECONDS * 4)
    return scheduler


def run(runner: Runner, *, say: Callable[[str], None], standby: bool = False) -> None:
    """Run the scheduler's roles until ``runner.stop`` is set (the CLI sets it on SIGTERM or
    SIGINT); with ``standby``, first wait for the scheduler running them elsewhere to stop."""
    store = runner.open_store()
    seconds = runner.config.file.schedule.lease_seconds
    lease = Lease(store, owner(), runner.roles, seconds, runner.clock)
    try:
        if not stand_by(lease, runner.stop, standby=standby, say=say):
            say("stopped while standing by")
            return
        try:
            _run_jobs(runner, lease, say=say)
        finally:
            lease.release()
    finally:
        store.close()
    if lease.lost:
        raise ScheduleError(
            "this scheduler lost its lock to another one and stopped",
            hint="Check this machine's connection to the database; the other scheduler runs "
            "the jobs meanwhile.",
        )
    if "send" not in runner.roles:  # a collector: the next collect is when it starts again
        say("stopped: collecting goes on when `newsletter run` starts again")
        return
    say(
        "stopped: an edition left unfinished is finished when `newsletter run` starts again, "
        "or now with: newsletter send"
    )


def _run_jobs(runner: Runner, lease: Lease, *, say: Callable[[str], None]) -> None:
    path = str(runner.config.path.resolve())
    _RUNNERS[path] = runner  # the stored jobs of this config reach this runner
    try:
        _run_scheduler(runner, lease, say=say)
    finally:
        _RUNNERS.pop(path, None)


def _run_scheduler(runner: Runner, lease: Lease, *, say: Callable[[str], None]) -> None:
    scheduler = _scheduler(runner)
    threading.Thread(target=lease.keep, args=(runner.stop,), daemon=True).start()
    for job in scheduler.get_jobs():
        at = job.next_run_time
        say(f"next {job.id}: {at:%Y-%m-%d %H:%M:%S %Z}" if at else f"{job.id}: paused")
    if "send" in runner.roles:
        runner.send()  # what a scheduler killed mid-way left, and whatever is due, first
    scheduler.resume()
    while not runner.stop.wait(1.0):
        pass
    say("stopping: finishing the batch in flight")
    scheduler.shutdown(wait=True)


def _ensure_job(
    scheduler: BackgroundScheduler,
    func: Callable[[str], None],
    trigger: Any,
    path: str,
    *,
    grace: int,
) -> None:
    """Keep a stored job (and its missed run) when its schedule is unchanged; else replace it.
    The job is named for its role, and kept in that role's job store."""
    job_id = func.__name__.removesuffix("_job")
    existing = scheduler.get_job(job_id, jobstore=job_id)
    if (
        existing is not None
        and str(existing.trigger) == str(trigger)
        and existing.args == (path,)
        and existing.misfire_grace_time == grace
    ):
        if existing.func_ref != f"{func.__module__}:{func.__qualname__}":
            # stored by an earlier version under its old name: the new one, next run kept
            scheduler.modify_job(job_id, jobstore=job_id, func=func)
        return
    scheduler.add_job(
        func,
        trigger,
        args=[path],
        id=job_id,
        name=job_id,
        jobstore=job_id,
        replace_existing=True,
        misfire_grace_time=grace,
        coalesce=True,
        max_instances=1,
    )
