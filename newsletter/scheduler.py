"""``newsletter run``: APScheduler 3 in the foreground. Wiring only.

Two jobs, kept in the project's database by APScheduler's SQLAlchemy job store: ``collect``
every ``schedule.collect_every_minutes``, and ``send`` daily at ``schedule.send_at`` in
``schedule.timezone`` (optionally on chosen weekdays), which collects once more, builds the
edition and sends it through the ledger. A send missed while the scheduler was down runs on
restart within ``schedule.misfire_grace_minutes``; past that it is skipped, with a log line that
says how to send late. An edition left ``sending`` (the scheduler was killed mid-send, after
APScheduler had already moved the job to the next day) is finished on start and on every
collect tick, before anything else, within the same grace. One scheduler per database (a lock
row with a heartbeat). SIGTERM and SIGINT finish the requests in flight, record them, and exit.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, select

from newsletter.config import Config, ScheduleConfig, load_config
from newsletter.delivery import claim_is_alive
from newsletter.errors import NewsletterError
from newsletter.models import EditionStatus, FetchOutcome

if TYPE_CHECKING:
    from newsletter.store import Store

logger = logging.getLogger("newsletter.run")

LOCK = "run"
HEARTBEAT = timedelta(seconds=20)
JOBS_TABLE = "apscheduler_jobs"
_stop = threading.Event()  # set by SIGTERM/SIGINT: the send stops after its batch in flight


def send_trigger(schedule: ScheduleConfig) -> CronTrigger:
    """The daily send at the local wall-clock time, across daylight-saving changes."""
    return CronTrigger(
        hour=schedule.send_at.hour,
        minute=schedule.send_at.minute,
        second=schedule.send_at.second,
        day_of_week=",".join(schedule.weekdays) or None,
        timezone=schedule.timezone,
    )


def collect_trigger(schedule: ScheduleConfig) -> IntervalTrigger:
    return IntervalTrigger(seconds=schedule.collect_every_minutes * 60, timezone="UTC")


def _now() -> datetime:
    return datetime.now(UTC)


# The jobs. Module-level functions, so the job store can keep a reference to them.


def resume_interrupted(config: Config, store: Store, *, now: Callable[[], datetime]) -> int:
    """Finish every edition left ``sending`` (a scheduler killed mid-send) whose send time is
    within the misfire grace; report older ones. Returns how many readers were sent to."""
    from newsletter import delivery
    from newsletter.mailers import make_mailer

    schedule = config.file.schedule
    grace = timedelta(minutes=schedule.misfire_grace_minutes)
    zone = ZoneInfo(schedule.timezone)
    sent = 0
    for day in store.editions_in_status(EditionStatus.SENDING):
        due = datetime.combine(day, schedule.send_at, tzinfo=zone)
        if now() - due > grace:
            logger.warning(
                "send: the edition of %s was interrupted and is past the %s grace; finish it "
                "with: newsletter --config %s send --date %s",
                day,
                grace,
                config.path,
                day,
            )
            continue
        logger.info("send: finishing the interrupted edition of %s first", day)
        mailer = make_mailer(config)
        try:
            report = delivery.send_edition(
                config, store, mailer, now=now, day=day, should_stop=_stop.is_set
            )
        except NewsletterError as exc:
            logger.error("send: %s (%s)", exc.message, exc.hint or "")
            continue
        finally:
            mailer.close()
        sent += report.sent
        logger.info("send: edition of %s finished: %d more sent", day, report.sent)
    return sent


def collect_job(config_path: str) -> None:
    from newsletter import pipeline
    from newsletter.store import Store

    config = load_config(Path(config_path))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    try:
        resume_interrupted(config, store, now=_now)  # before anything else
        report = pipeline.collect_all(config, store, now=_now())
    finally:
        store.close()
    failed = sum(r.status in {FetchOutcome.FAILED, FetchOutcome.GONE} for r in report.results)
    new = sum(r.new for r in report.results)
    logger.info(
        "collect: %d feeds, %d new stories, %d failed (%.1f s)",
        len(report.results),
        new,
        failed,
        report.seconds,
    )


def send_job(config_path: str) -> None:
    from newsletter import delivery, pipeline
    from newsletter.mailers import make_mailer
    from newsletter.store import Store

    started = time.perf_counter()
    config = load_config(Path(config_path))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    mailer = make_mailer(config)
    try:
        pipeline.collect_all(config, store, now=_now())
        report = delivery.send_edition(config, store, mailer, now=_now, should_stop=_stop.is_set)
    except NewsletterError as exc:
        logger.error("send: %s (%s)", exc.message, exc.hint or "")
        return
    finally:
        mailer.close()
        store.close()
    logger.info(
        "send: edition of %s: %d sent, %d failed, %d skipped, %d already sent (%.1f s)",
        report.edition_date,
        report.sent,
        report.failed,
        report.skipped,
        report.already_sent,
        time.perf_counter() - started,
    )


@dataclass(frozen=True, slots=True)
class NextRun:
    job: str
    at: datetime | None  # None: paused


def next_runs(database_url: str) -> list[NextRun]:
    """The scheduled jobs and their next run, read from the job store's table."""
    engine = create_engine(database_url)
    table = Table(JOBS_TABLE, MetaData(), Column("id", String), Column("next_run_time", Float))
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, JOBS_TABLE):
                return []
            rows = conn.execute(select(table.c.id, table.c.next_run_time).order_by(table.c.id))
            return [
                NextRun(
                    r.id, datetime.fromtimestamp(r.next_run_time, UTC) if r.next_run_time else None
                )
                for r in rows
            ]
    finally:
        engine.dispose()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run(config: Config, *, say: Callable[[str], None]) -> None:
    """Run the scheduler until SIGTERM or SIGINT."""
    from newsletter.store import Store

    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    owner = _owner()
    now = _now()
    taken, holder, since = store.take_lock(
        LOCK, owner, now=now, stale_before=now - 3 * HEARTBEAT, alive=claim_is_alive
    )
    if not taken:
        store.close()
        started = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        raise NewsletterError(
            f"another `newsletter run` ({holder}{started}) is already running on this database",
            hint="Stop that one first; only one scheduler may send from a database.",
        )
    path = str(config.path.resolve())
    schedule = config.file.schedule
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=config.database_url, tablename=JOBS_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=schedule.timezone,
    )
    grace = int(schedule.misfire_grace_minutes * 60)

    def missed(event: JobExecutionEvent) -> None:
        if event.job_id == "send":
            late = _now() - event.scheduled_run_time
            logger.warning(
                "send: the send due at %s was missed by %s, past the %s grace, so nothing was "
                "sent. To send it late, run: newsletter --config %s send",
                event.scheduled_run_time,
                str(late).split(".")[0],
                timedelta(seconds=grace),
                path,
            )

    def failed(event: JobExecutionEvent) -> None:
        logger.error("%s: failed: %s", event.job_id, event.exception)

    scheduler.add_listener(missed, EVENT_JOB_MISSED)
    scheduler.add_listener(failed, EVENT_JOB_ERROR)
    scheduler.start(paused=True)
    _ensure_job(scheduler, "collect", collect_job, collect_trigger(schedule), path, grace=60)
    _ensure_job(scheduler, "send", send_job, send_trigger(schedule), path, grace=grace)
    heartbeat = threading.Thread(target=_beat, args=(store, owner), daemon=True)
    heartbeat.start()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    for run_ in next_runs(config.database_url):
        say(
            f"next {run_.job}: {run_.at:%Y-%m-%d %H:%M:%S %Z}" if run_.at else f"{run_.job}: paused"
        )
    resume_interrupted(config, store, now=_now)  # a send killed mid-way finishes first
    scheduler.resume()
    try:
        while not _stop.wait(1.0):
            pass
        say("stopping: finishing the batch in flight")
        scheduler.shutdown(wait=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.release_lock(LOCK, owner)
        store.close()
    say(
        "stopped: an edition left unfinished is finished when `newsletter run` starts again, "
        "or now with: newsletter send"
    )


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _stop.set()


def _beat(store: Any, owner: str) -> None:
    while not _stop.wait(HEARTBEAT.total_seconds()):
        try:
            store.beat(LOCK, owner, now=_now())
        except Exception:  # keep beating through a passing database hiccup
            logger.exception("heartbeat failed")


def _ensure_job(
    scheduler: BackgroundScheduler,
    job_id: str,
    func: Callable[[str], None],
    trigger: Any,
    path: str,
    *,
    grace: int,
) -> None:
    """Keep a stored job (and its missed run) when its schedule is unchanged; else replace it."""
    existing = scheduler.get_job(job_id)
    if (
        existing is not None
        and str(existing.trigger) == str(trigger)
        and existing.args == (path,)
        and existing.misfire_grace_time == grace
    ):
        return
    scheduler.add_job(
        func,
        trigger,
        args=[path],
        id=job_id,
        name=job_id,
        replace_existing=True,
        misfire_grace_time=grace,
        coalesce=True,
        max_instances=1,
    )
