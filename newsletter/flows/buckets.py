"""The scheduler's send: every reader gets each edition at their own local hour.

Readers share delivery slots (a zone, an hour, daily or weekly on a weekday:
``readers.timing``). Each pass (``send_due``, every few seconds from ``newsletter run``, or
``newsletter send --due``) looks at the edition dates some zone is delivering, and for each:

1. Nothing happens before the date's first slot is due: that moment, in the earliest zone,
   is the edition's cut-off. At the first pass after it the edition is built from what is
   collected by then and frozen: every reader of that date gets the same stories, whatever
   their hour. (With ``schedule.require_approval`` the daily one waits for it first.)
2. The readers of every slot now due get a pending row in the ledger (one per edition and
   reader, unique), and the ledger's send delivers them (``delivery.deliver``): a reader whose
   hour passed before the edition was ready gets it at once. A slot whose hour is further
   back than ``schedule.misfire_grace_minutes`` (a scheduler that was down) is not sent to,
   and the log says how to send it late; an edition ready late, within the grace of the
   hour, is sent to it within the grace of being ready.
3. Once the date's last slot is due and no row is left, the edition counts as sent.

The ledger's guarantees hold across passes and restarts: a pass killed mid-bucket leaves its
rows pending or claimed, and the next pass (after a restart too) sends exactly those; the
readers in flight at the kill are the only ones who can get a second copy.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from newsletter.config import Config
from newsletter.delivery.mailers import Mailer
from newsletter.errors import EditionError
from newsletter.flows.build import edition_date_for
from newsletter.models import DeliveryStatus, EditionKind, EditionStatus, SendReport
from newsletter.readers import timing
from newsletter.readers.timing import Due
from newsletter.records import StoredEdition
from newsletter.store import Store

# the build and the delivery (the sector model, the renderer) are imported by the passes that
# use them, so that `status` (``buckets``) starts without them

logger = logging.getLogger("newsletter.run")

OPEN = (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED)


@dataclass
class Pass:
    """What a pass is given: the clocks, the stop, what it does before a freeze, and the
    lines it has said already (said once per scheduler, not once per pass)."""

    now: Callable[[], datetime]
    should_stop: Callable[[], bool] | None = None
    claim_clock: Callable[[], datetime] | None = None
    before_freeze: Callable[[], None] | None = None  # the scheduler collects once more
    told: set[str] = field(default_factory=set)
    # below a warning, the latest: `send --due` prints them (a scheduler's pass keeps no more)
    said: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    spoke: bool = False  # anything said, a warning too

    def say_once(self, level: int, key: str, message: str) -> None:
        if key not in self.told:
            self.told.add(key)
            self.spoke = True
            logger.log(level, message)
            if level < logging.WARNING:
                self.said.append(message)


def send_due(
    config: Config, store: Store, make_mailer: Callable[[], Mailer], run: Pass
) -> list[SendReport]:
    """Deliver every edition to the readers whose slot is due; one report per edition that
    sent (or tried to)."""
    at = run.now()
    slots = store.ledger.reader_slots()
    reports = []
    for kind in EditionKind:
        days = set(timing.days_in_progress(at))
        days |= set(store.editions.editions_in_status(EditionStatus.SENDING, kind))
        for day in sorted(days):
            planned = timing.plan(slots, day, kind, config.file.schedule)
            report = _send_day(config, store, make_mailer, run, planned, day=day, kind=kind)
            if report is not None:
                reports.append(report)
    return reports


def buckets(config: Config, store: Store, *, now: datetime) -> list[Due]:
    """The slots still to send of the dates in progress, earliest first (``status``): those
    to come, and those due within the grace whose edition is not built yet (it waits for an
    editor's approval, or for stories): the next pass sends them once it is."""
    slots = store.ledger.reader_slots()
    grace = timedelta(minutes=config.file.schedule.misfire_grace_minutes)
    out = []
    for kind in EditionKind:
        for day in timing.days_in_progress(now):
            stored = store.editions.edition_ref(day, kind)
            if stored is not None and stored.status == EditionStatus.SENT:
                continue
            unbuilt = stored is None or stored.status not in EditionStatus.fixed()
            out += [
                d
                for d in timing.plan(slots, day, kind, config.file.schedule)
                if d.at > now or (unbuilt and now - d.at <= grace)
            ]
    return sorted(out, key=lambda d: (d.at, d.slot))


def _send_day(
    config: Config,
    store: Store,
    make_mailer: Callable[[], Mailer],
    run: Pass,
    planned: Sequence[Due],
    *,
    day: date,
    kind: EditionKind,
) -> SendReport | None:
    at = run.now()
    grace = timedelta(minutes=config.file.schedule.misfire_grace_minutes)
    due = [d for d in planned if d.at <= at]
    stored = store.editions.edition(day, kind)
    if stored is not None and stored.status == EditionStatus.SENT:
        return None
    if not due:  # before its first slot: only what a `newsletter send` began (every reader
        # of the edition, at once) is finished, and then the edition is sent
        if stored is not None and stored.status == EditionStatus.SENDING and _open(store, stored):
            return _deliver(config, store, make_mailer, run, stored, final=True)
        return None
    name = f"the {kind} edition of {day}"
    late = _late(config, day)
    if stored is None or stored.status not in EditionStatus.fixed():
        if all(at - d.at > grace for d in due):
            if store.readers.joined_by(due[0].at):  # (a reader who joined since missed nothing)
                said = _missed(config, name, due, at, kind)
                run.say_once(logging.WARNING, f"missed {kind} {day}", said)
            return None
        stored = _frozen(config, store, run, day=day, kind=kind, at=at)
        if stored is None:
            return None
    ready = stored.built_at or at
    deliverable = [d.slot for d in due if _in_time(d.at, ready, at, grace)]
    missed = [d for d in due if not _in_time(d.at, ready, at, grace)]
    _say_late(config, store, run, stored, missed, name=name, late=late)
    frequency = kind.readers
    store.ledger.seed_deliveries(stored.id, slots=deliverable, frequency=frequency)
    final = len(due) == len(planned)
    if not _open(store, stored):
        if final:
            from newsletter.delivery import deliver

            deliver.close_if_done(store, stored.id, now=at)
        return None
    if not deliverable:  # rows left by an interrupted send, all past the grace
        run.say_once(
            logging.WARNING,
            f"left {kind} {day}",
            f"send: {name} was interrupted and is past the {grace} grace; finish it with: {late}",
        )
        return None
    return _deliver(config, store, make_mailer, run, stored, final=final)


def _missed(config: Config, name: str, due: Sequence[Due], at: datetime, kind: EditionKind) -> str:
    """What to say at ``at`` of an edition not built, all of whose slots are past the grace."""
    from newsletter.flows.desk import Waiting, gate

    day = due[0].day
    grace = timedelta(minutes=config.file.schedule.misfire_grace_minutes)
    said = f"send: {name} was due from {due[0].at:%Y-%m-%d %H:%M} UTC, past the {grace} grace"
    if kind == EditionKind.DAILY:  # it could not have gone without an approval either
        state = gate(config, day, at)
        if state.state is Waiting.TIMED_OUT and state.on_timeout != "send":
            said += " and had no editor's approval by its deadline (on_timeout: skip)"
            return f"{said}, so nothing was sent; its readers get the next edition."
    if day != edition_date_for(config, at):
        # only today's edition can be built (``flows.send``): a past day's is not sent
        return f"{said}, so nothing was sent; its readers get the next edition."
    return f"{said}, so nothing was sent. To send it late, run: {_late(config, day)}"


def _late(config: Config, day: date) -> str:
    return f"newsletter --config {config.path} send --date {day}"


def _say_late(
    config: Config,
    store: Store,
    run: Pass,
    stored: StoredEdition,
    missed: Sequence[Due],
    *,
    name: str,
    late: str,
) -> None:
    """Say once that the readers of slots past the grace, not sent to, are left out now."""
    key = f"late {stored.edition.kind} {stored.edition.edition_date} {[d.slot for d in missed]}"
    if not missed or key in run.told:
        return
    # each slot's readers who had joined by its hour and were not sent to: a slot sent in
    # time, or whose readers came after it, is not named
    left = [(d, store.ledger.unseeded(stored.id, d.slot, joined_by=d.at)) for d in missed]
    left = [(d, n) for d, n in left if n]
    readers = sum(n for _, n in left)
    if readers:
        grace = timedelta(minutes=config.file.schedule.misfire_grace_minutes)
        who = f"{readers} reader{'s' if readers != 1 else ''} of {name}"
        were = "were" if readers != 1 else "was"
        slots = ", ".join(_slot_names(config, [d for d, _ in left]))
        run.say_once(
            logging.WARNING,
            key,
            f"send: {who} {were} due more than {grace} ago and {were} not sent to now "
            f"({slots}). To send it late: {late}",
        )


def _open(store: Store, stored: StoredEdition) -> bool:
    """Whether the edition has rows pending or claimed."""
    counts = store.ledger.delivery_counts(stored.id)
    return any(counts.get(status) for status in OPEN)


def _in_time(due: datetime, ready: datetime, at: datetime, grace: timedelta) -> bool:
    """Whether a slot due at ``due`` is still sent at ``at``: within the grace of its hour, or
    the edition came late (an approval, stories that came late) but within the grace of the
    hour, and it is still within the grace of that."""
    return at - due <= grace or (ready - due <= grace and at - ready <= grace)


def _deliver(
    config: Config,
    store: Store,
    make_mailer: Callable[[], Mailer],
    run: Pass,
    stored: StoredEdition,
    *,
    final: bool,
) -> SendReport:
    from newsletter.delivery import deliver

    mailer = make_mailer()
    try:
        report = deliver.deliver(
            config,
            store,
            mailer,
            stored,
            now=run.now,
            should_stop=run.should_stop,
            claim_clock=run.claim_clock,
            slots=(),  # seeded already: the slots due
            final=final,
        )
    finally:
        mailer.close()
    kind = stored.edition.kind
    logger.info(
        "send: %s edition of %s: %d sent, %d failed, %d skipped, %d already sent (%.1f s)",
        kind,
        report.edition_date,
        report.sent,
        report.failed,
        report.skipped,
        report.already_sent,
        report.seconds,
    )
    return report


def _frozen(
    config: Config, store: Store, run: Pass, *, day: date, kind: EditionKind, at: datetime
) -> StoredEdition | None:
    """The edition of ``day`` built now and frozen (after the approval it may wait for), or
    the one another scheduler froze first; None: not yet, or none today (said once)."""
    from newsletter.flows.build import build
    from newsletter.flows.desk import Waiting, gate

    if kind == EditionKind.DAILY:
        state = gate(config, day, at)
        key = f"gate {day} {state.state}"
        if state.state is Waiting.WAITING:
            run.say_once(logging.INFO, key, f"send: {state.says()}")
            return None
        if state.state is Waiting.TIMED_OUT and state.on_timeout != "send":
            how = f"; to send it anyway: newsletter --config {config.path} send"
            run.say_once(logging.WARNING, key, f"send: {state.says()}{how}")
            return None
        if state.state is not Waiting.NOT_REQUIRED:
            run.say_once(logging.INFO, key, f"send: {state.says()}: sending")
    # once a day's edition: while it cannot be built, the passes after (every 15 s) leave the
    # feeds to the collect job
    if run.before_freeze is not None and (key := f"collected {kind} {day}") not in run.told:
        run.told.add(key)
        run.before_freeze()
    built = build(config, store, now=at, ask_writer=False, day=day, kind=kind)
    if built.edition is None:
        run.say_once(
            logging.WARNING,
            f"none {kind} {day}",
            f"send: no {kind} edition for {day}: {built.reason}",
        )
        return None
    store.editions.save_edition(built.edition, status=EditionStatus.FROZEN, now=at)
    stored = store.editions.edition(day, kind)
    if stored is None or stored.status not in EditionStatus.fixed():
        raise EditionError(
            f"the {kind} edition of {day} could not be stored",
            day=day,
            hint="Check that the database is writable; the next pass tries again.",
        )
    logger.info("send: froze the %s edition of %s", kind, day)
    return stored


def _slot_names(config: Config, dues: Sequence[Due]) -> list[str]:
    return [timing.describe(d.slot, config.file.schedule) for d in dues[:5]] + (
        [f"{len(dues) - 5} more"] if len(dues) > 5 else []
    )
