"""One sender's loop: batches claimed from the ledger, split into mailer calls, sent with a
bounded number of readers in flight, each call's outcome recorded as soon as it returns.

Readers in flight are those whose call has started and whose outcome is not yet in the
ledger: at most ``delivery.readers_in_flight`` in all (and at most the mailer's ``parallel``
calls). That is the whole of what a SIGKILL can send twice.

A database that stops taking writes does not lose an outcome: it is held, written to the
journal at once (``journal.py``), and written to the ledger before anything new is claimed.
While the database stays down nothing new starts; the calls in flight finish and are held too.
If it is still down after ``delivery.database_wait_seconds``, the send stops with
``StoreUnavailable`` and the journal keeps the outcomes for the next run.

A stop asked for (``should_stop``: SIGTERM, Ctrl-C) starts no new call, tells the mailers to
start nothing more (no retry, no next message), records what the calls in flight did and
gives back every reader not sent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from newsletter.delivery.journal import Journal, Outcome
from newsletter.delivery.mailers.senders import Senders, switching_often
from newsletter.delivery.variants import Variants
from newsletter.errors import DeliveryError, StoreUnavailable
from newsletter.models import Batch, BatchResult
from newsletter.store import Store
from newsletter.store.claims import ClaimRule

logger = logging.getLogger("newsletter.delivery.deliver")

Progress = Callable[[int, int], None]  # (done, total)
POLL = 0.25  # seconds between looks at a stop request while calls are in flight
# readers in a call however few are allowed in flight (a batch may hold fewer), and at least
# in a call that fills the room another left
SMALLEST_CALL = 50


@dataclass
class Limits:
    """How a sender paces itself (from ``delivery:``)."""

    claim_size: int  # readers claimed at once: a call's worth, or an eighth of the room
    readers_in_flight: int
    # readers in one mailer call: a share of those in flight, so that when a call ends the
    # next fits in the room it left and the readers in flight stay near their bound
    per_call: int = 1000
    heartbeat: float = 15.0  # seconds between beats on this sender's claims
    timeout: timedelta = timedelta(minutes=2)  # another sender silent this long is taken over
    database_wait: float = 120.0  # seconds a database that fails is waited for


@dataclass
class _Outage:
    """The database stopped answering: since when, its last error, when to try again."""

    since: datetime
    error: StoreUnavailable
    next_try: datetime
    tries: int = 0

    def failed_again(self, error: StoreUnavailable, now: datetime) -> None:
        """Another failed try: the next one a little later (0.5 s, 1 s, 2 s, ... 10 s)."""
        self.error = error
        self.tries += 1
        self.next_try = now + timedelta(seconds=min(0.25 * 2**self.tries, 10.0))


@dataclass
class Sending:
    """The send loop of one sender of one edition."""

    store: Store
    senders: Senders
    edition_id: int
    day: date
    claim: str  # this sender's; each batch is claimed as claim:n
    limits: Limits
    journal: Journal
    now: Callable[[], datetime]
    claim_clock: Callable[[], datetime]  # times claims, heartbeats and the database's outage
    progress: Progress | None = None
    total: int = 0
    # waits (seconds) while the database is down or other senders finish; True ends the wait
    pause: Callable[[float], bool] = field(default_factory=lambda: threading.Event().wait)
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    done: int = 0
    batches: int = 0
    held: list[Outcome] = field(default_factory=list)  # outcomes the ledger has not taken
    outage: _Outage | None = None
    in_flight: dict[Future[BatchResult], Batch] = field(default_factory=dict)
    waiting: deque[Batch] = field(default_factory=deque)
    stopped: bool = False
    exhausted: bool = False  # nothing left to claim
    fatal: DeliveryError | None = None
    gone: str = ""  # why the mail server went away, when it did
    _finished: threading.Event = field(default_factory=threading.Event)

    # the loop ----------------------------------------------------------------------------------

    def run(self, variants: Variants, should_stop: Callable[[], bool] | None) -> bool:
        """Send until every claimed row is recorded; True when ``should_stop`` stopped it."""
        asked = should_stop or (lambda: False)
        beating = threading.Thread(target=self._beat, name="send-heartbeat", daemon=True)
        beating.start()
        with (
            switching_often(),
            ThreadPoolExecutor(self.senders.parallel, thread_name_prefix="send") as pool,
        ):
            try:
                while self._step(pool, variants, asked):
                    pass
            except StoreUnavailable:  # given up on the database: what it holds is journaled
                self._finished.set()
                raise
            except BaseException:
                self._finished.set()
                self._drain()  # what the calls in flight did is kept,
                with contextlib.suppress(Exception):  # and the rest goes back to the queue
                    self.store.ledger.release_claim(self.claim)
                raise
        self._finished.set()
        self._give_back()
        if self.fatal:
            raise self.fatal
        if self.gone:
            raise DeliveryError(
                f"sending stopped mid-batch: {self.gone}",
                hint="Everything it accepted is recorded; run `newsletter send` again to finish.",
            )
        return self.stopped

    def _step(
        self, pool: ThreadPoolExecutor, variants: Variants, asked: Callable[[], bool]
    ) -> bool:
        """One turn of the loop; False when the send is over."""
        if not self.stopped and asked():
            self._stop()
        if self._may_try():
            if self.held:
                self._flush()
            elif self.outage is not None:
                self._database_back()
        if not self.held and self.outage is None:
            self._start_calls(pool, variants)
        if self.exhausted and self.in_flight and not self.waiting:
            variants.close()  # while the last calls fly, not after: the worker stops, kept
        if self.in_flight:
            finished, _ = wait(self.in_flight, timeout=POLL, return_when=FIRST_COMPLETED)
            for future in finished:
                self._finish(future)
            return True
        if self.held or self.outage is not None:
            self._wait_for_database()
            return True
        if self._over():
            return False
        if self.waiting or not self.exhausted:
            return True
        if self._others(asked):
            self.exhausted = False
            return True
        return False

    def _over(self) -> bool:
        return bool(self.fatal or self.gone or self.stopped)

    def _stop(self) -> None:
        logger.info("send stopped; `newsletter send` goes on from here")
        self.stopped = True
        self.senders.stop()

    def _start_calls(self, pool: ThreadPoolExecutor, variants: Variants) -> None:
        """Start calls while a slot is free and their readers fit in flight."""
        while not self._over() and len(self.in_flight) < self.senders.parallel:
            if not self.waiting:
                if self.exhausted or not self._claim(variants):
                    return
                continue
            job = self.waiting.popleft()
            room = self.limits.readers_in_flight - self._readers_in_flight()
            if self.in_flight and len(job.recipients) > room:
                # the room a call left is filled: the first readers of the next call go now
                # (never fewer than ``SMALLEST_CALL``), the rest wait for the next room
                if room < SMALLEST_CALL:
                    self.waiting.appendleft(job)
                    break
                self.waiting.appendleft(replace(job, recipients=job.recipients[room:]))
                job = replace(job, recipients=job.recipients[:room])
            self.in_flight[pool.submit(self.senders.send, job)] = job
        if self.in_flight and not (self.waiting or self.exhausted or self._over()):
            self._claim(variants)  # the next batch is claimed while the calls are in flight

    def _readers_in_flight(self) -> int:
        return sum(len(job.recipients) for job in self.in_flight.values()) + sum(
            o.readers for o in self.held
        )

    def _finish(self, future: Future[BatchResult]) -> None:
        self.in_flight.pop(future)
        try:
            result = future.result()
        except DeliveryError as exc:
            self.fatal = self.fatal or exc
            return
        # what the provider accepted is recorded at once, so it is never sent again
        self._record(Outcome(self.now(), result.sent, result.failed, {}))
        if result.unsent and not result.stopped:
            self.gone = self.gone or result.stop_reason

    # the ledger --------------------------------------------------------------------------------

    def _claim(self, variants: Variants) -> bool:
        """Claim the next batch and queue its mailer calls; False when nothing was left (or
        the database could not be asked)."""
        self.batches += 1
        try:
            batch = self.store.ledger.claim_batch(
                self.edition_id,
                claim=f"{self.claim}:{self.batches}",
                size=self.limits.claim_size,
                now=self.claim_clock(),
            )
        except StoreUnavailable as exc:
            self._down(exc)
            return False
        self.exhausted = not batch
        calls, skipped = variants.batches(
            batch, edition_id=self.edition_id, day=self.day, per_call=self.limits.per_call
        )
        if skipped:
            self._record(Outcome(self.now(), {}, {}, skipped))
        self.waiting.extend(calls)
        return bool(batch)

    def _record(self, outcome: Outcome) -> None:
        """Into the ledger, or held (and journaled) when the ledger cannot take it now."""
        self.held.append(outcome)
        if len(self.held) == 1 and self._may_try():
            self._flush()
        else:  # outcomes already wait for the database: this one waits behind them
            self._keep()

    def _flush(self) -> bool:
        """Write the held outcomes to the ledger, oldest first; False when it failed."""
        while self.held:
            outcome = self.held[0]
            try:
                self.store.ledger.record_deliveries(
                    sent=outcome.sent,
                    failed=outcome.failed,
                    skipped=outcome.skipped,
                    now=outcome.at,
                )
            except StoreUnavailable as exc:
                self._down(exc)
                self._keep()
                return False
            self.held.pop(0)
            self._count(outcome)
        if self.outage is not None:
            self._up()
        return True

    def _count(self, outcome: Outcome) -> None:
        self.sent += len(outcome.sent)
        self.failed += len(outcome.failed)
        self.skipped += len(outcome.skipped)
        self.done += outcome.readers
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _keep(self) -> None:
        """The held outcomes into the journal (cleared when none are held)."""
        try:
            self.journal.keep(self.held)
        except OSError as exc:  # they stay in memory; a crash now may send them twice
            logger.error("cannot write the journal %s: %s", self.journal.path, exc)

    def _may_try(self) -> bool:
        """Whether the database may be tried now (always, unless it is down and the next try
        is not due yet)."""
        return self.outage is None or self.claim_clock() >= self.outage.next_try

    def _down(self, error: StoreUnavailable) -> None:
        now = self.claim_clock()
        if self.outage is None:
            logger.warning(
                "%s; nothing new is sent until it answers (waiting up to %g s)",
                error.message,
                self.limits.database_wait,
            )
            self.outage = _Outage(since=now, error=error, next_try=now)
        self.outage.failed_again(error, now)

    def _up(self) -> None:
        assert self.outage is not None
        seconds = (self.claim_clock() - self.outage.since).total_seconds()
        logger.warning("the database answers again after %.0f s; the send goes on", seconds)
        self.outage = None
        self._keep()

    def _database_back(self) -> bool:
        """With nothing held: whether the database answers again (a cheap read)."""
        try:
            self.store.ledger.delivery_counts(self.edition_id)
        except StoreUnavailable as exc:
            self._down(exc)
            return False
        self._up()
        return True

    def _wait_for_database(self) -> None:
        """Nothing in flight and the database down: wait for the next try, and give up
        (the journal keeping what is held) past ``database_wait`` or on a stop."""
        assert self.outage is not None
        now = self.claim_clock()
        waited = (now - self.outage.since).total_seconds()
        if waited >= self.limits.database_wait or self.stopped:
            kept = sum(o.readers for o in self.held)
            where = f"; {kept} readers' outcomes are kept in {self.journal.path}" if kept else ""
            raise StoreUnavailable(
                f"{self.outage.error.message} (for {waited:.0f} s){where}",
                hint="When the database is back, run `newsletter send` again on this machine: "
                "it records what was kept first, then sends the rest, nobody twice.",
            )
        due = (self.outage.next_try - now).total_seconds()
        self.pause(max(0.0, min(due, self.limits.database_wait - waited)))

    def _give_back(self) -> None:
        """At the end: the claimed rows not sent go back to the queue."""
        if self.fatal or self.gone or self.stopped or self.waiting:
            self.waiting.clear()
            try:
                self.store.ledger.release_claim(self.claim)
            except StoreUnavailable as exc:  # the next run gives them back (this one is gone)
                logger.warning("cannot give back the unsent readers now: %s", exc.message)

    def _drain(self) -> None:
        """After an unexpected error: wait for the calls in flight and record what they did
        (or journal it), so their readers are not sent again by the next run."""
        for future in list(self.in_flight):
            try:
                result = future.result()
            except Exception:  # the first error is the one raised
                logger.exception("a request in flight failed while the send was stopping")
                continue
            self.held.append(Outcome(self.now(), result.sent, result.failed, {}))
        self.in_flight.clear()
        if self.held and not self._flush():
            logger.error(
                "%d readers' outcomes could not be recorded; they are kept in %s",
                sum(o.readers for o in self.held),
                self.journal.path,
            )

    # other senders -----------------------------------------------------------------------------

    def _beat(self) -> None:
        """Keep this sender's claims fresh while it runs, so no other sender takes them."""
        failing = False
        while not self._finished.wait(self.limits.heartbeat):
            try:
                self.store.ledger.beat_claims(self.claim, now=self.claim_clock())
                failing = False
            except Exception as exc:  # retried at the next beat; said once per outage
                if not failing:
                    logger.warning("a heartbeat on this sender's claims failed: %s", exc)
                failing = True

    def _others(self, asked: Callable[[], bool]) -> bool:
        """With nothing left to claim: while other senders (here or on other machines) hold
        rows, wait, and take over those whose sender went silent. True when some were given
        back to be sent (or the database must be waited for); False when every row is done
        (or a stop was asked)."""
        try:
            while self.store.ledger.claimed_elsewhere(self.edition_id, self.claim):
                released = self.store.ledger.release_abandoned(
                    self.edition_id, rule=ClaimRule(self.limits.timeout), now=self.claim_clock()
                )
                if released:
                    logger.warning("%d readers of a silent sender are sent by this one", released)
                    return True
                # a look a second: the last rows recorded elsewhere end this sender's wait soon
                if asked() or self.pause(min(self.limits.heartbeat, 1.0)):
                    return False
        except StoreUnavailable as exc:
            self._down(exc)
            return True
        return False
