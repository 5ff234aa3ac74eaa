"""``send_edition``: every confirmed reader gets the day's edition exactly once.

1. The edition of the day is built (or the stored one reused) and frozen: a resumed send sends
   the same stories.
2. The ledger gets one pending row per confirmed reader (unique per edition and reader).
3. Batches are claimed, split into one mailer call per variant, sent with up to the mailer's
   ``parallel`` calls in flight (SendGrid requests, SMTP connections), and each call's outcome
   is recorded as soon as it returns. A reader who left or bounced since the edition was built
   is skipped at batch time. Claims of a sender that died are released first.

After a crash at any moment, running ``send`` again finishes the edition: nobody is missed, and
only the readers of the calls in flight at the crash can get a second copy (the provider may
have accepted them before the outcome was recorded): at most ``parallel`` calls of at most
``batch_size`` readers. Claimed readers whose call had not started are sent once, later. Two
sends at once never claim the same rows. A fatal mailer error (a refused API key) lets the
calls in flight finish and be recorded, gives the rest back and stops the send.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import date, datetime, timedelta

from newsletter import personalize, pipeline
from newsletter.claims import claim_id, claim_is_alive
from newsletter.config import Config
from newsletter.errors import DeliveryError, EditionError
from newsletter.mailers import Mailer
from newsletter.models import (
    Batch,
    BatchResult,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Recipient,
    RenderedEmail,
    SendReport,
    Subscriber,
)
from newsletter.store import Store
from newsletter.variants import Variants

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


def frozen_edition(
    config: Config, store: Store, *, now: datetime, day: date
) -> tuple[int, Edition]:
    """The day's edition as stored and frozen, built first when there is none yet."""
    stored = store.edition(day)
    if stored is not None and stored.status in EditionStatus.fixed():
        return stored.id, stored.edition
    if day != pipeline.edition_date_for(config, now):
        raise EditionError(
            f"no edition of {day} was built, and only today's edition can be built",
            day=day,
            hint="Leave out --date to send today's edition.",
        )
    built = pipeline.build(config, store, now=now)
    if built.edition is None:
        raise EditionError(
            f"no edition for {day}: {built.reason}",
            day=day,
            hint="Nothing was sent. Collect again later, or check the feeds: newsletter status",
        )
    if not store.save_edition(built.edition, status=EditionStatus.FROZEN, now=now):
        stored = store.edition(day)  # another sender froze it first: send that one
        if stored is None or stored.status not in EditionStatus.fixed():
            raise EditionError(
                f"the edition of {day} could not be stored",
                day=day,
                hint="Run `newsletter send` again; check that the database is writable.",
            )
    stored = store.edition(day)
    assert stored is not None  # just stored
    return stored.id, stored.edition


def send_edition(
    config: Config,
    store: Store,
    mailer: Mailer,
    *,
    now: Callable[[], datetime],
    day: date | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    claim_clock: Callable[[], datetime] | None = None,
) -> SendReport:
    """Deliver the edition of ``day`` (today by default) to every confirmed reader once.

    Failed deliveries stay failed (the edition counts as sent) until ``retry_failed``.
    ``claim_clock`` times the claims and their heartbeats (default ``now``): the commands
    give it the wall clock, since other senders judge a silent one by it, whatever ``now``
    says the edition's day is.
    ``should_stop`` is asked before each claim: a stop finishes and records the requests in flight.
    """
    started = time.perf_counter()
    day = day or pipeline.edition_date_for(config, now())
    if dry_run:
        return _dry_run(config, store, mailer, now=now, day=day, started=started)
    edition_id, edition = frozen_edition(config, store, now=now(), day=day)
    store.set_edition_status(edition_id, EditionStatus.SENDING, now=now())
    store.seed_deliveries(edition_id)
    if retry_failed:
        store.retry_failed(edition_id)
    claim_clock = claim_clock or now
    stale = claim_clock() - timedelta(minutes=config.file.delivery.claim_timeout_minutes)
    released = store.release_abandoned(edition_id, alive=claim_is_alive, stale_before=stale)
    if released:
        logger.warning("%d readers of an interrupted send are sent again", released)
    before = store.delivery_counts(edition_id)
    total = sum(before.get(k, 0) for k in (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED))
    already = before.get(DeliveryStatus.SENT, 0)
    variants = Variants(config, edition)
    size = min(config.file.delivery.batch_size, mailer.max_batch)
    sending = _Sending(store, _Senders(mailer), edition_id, day, now, progress, total)
    sending.heartbeat = config.file.delivery.heartbeat_seconds
    sending.claim_clock = claim_clock
    sending.timeout = timedelta(minutes=config.file.delivery.claim_timeout_minutes)
    try:
        stopped = sending.run(variants, size, should_stop)
    finally:
        sending.senders.close()
    variants.log()
    counts = store.delivery_counts(edition_id)
    if not counts.get(DeliveryStatus.PENDING) and not counts.get(DeliveryStatus.CLAIMED):
        store.set_edition_status(edition_id, EditionStatus.SENT, now=now())
    seconds = time.perf_counter() - started
    return SendReport(
        day, sending.sent, sending.failed, sending.skipped, already, seconds, stopped=stopped
    )


class _Senders:
    """A mailer for each call in flight: the one given, and more from its ``another()``."""

    def __init__(self, mailer: Mailer) -> None:
        self.parallel = max(1, int(getattr(mailer, "parallel", 1)))
        self._first = mailer
        self._idle: queue.SimpleQueue[Mailer] = queue.SimpleQueue()
        self._idle.put(mailer)
        self._made: list[Mailer] = []
        self._lock = threading.Lock()

    def send(self, job: Batch) -> BatchResult:
        mailer = self._take()
        try:
            return mailer.send_batch(job)
        finally:
            self._idle.put(mailer)

    def _take(self) -> Mailer:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._made) + 1 < self.parallel:
                another = self._first.another()
                if another is not self._first:
                    self._made.append(another)
                return another
        return self._idle.get()

    def close(self) -> None:
        """Close the extra mailers (the caller closes the one it gave)."""
        for mailer in self._made:
            mailer.close()


class _Sending:
    """The send loop: batches claimed as the mailer calls in flight need them, each call's
    outcome recorded as soon as it returns, at most ``parallel`` calls in flight."""

    def __init__(
        self,
        store: Store,
        senders: _Senders,
        edition_id: int,
        day: date,
        now: Callable[[], datetime],
        progress: Progress | None,
        total: int,
    ) -> None:
        self.store, self.senders, self.edition_id, self.day = store, senders, edition_id, day
        self.now, self.progress, self.total = now, progress, total
        self.claim = claim_id()  # this sender's; each batch is claimed as claim:n
        self.batches = 0
        self.sent = self.failed = self.skipped = self.done = 0
        self.heartbeat = 15.0  # seconds between beats on this sender's claims
        self.timeout = timedelta(minutes=2)  # another sender silent this long is taken over
        self._finished = threading.Event()
        self.claim_clock = now  # times claims and heartbeats

    def _beat(self) -> None:
        """Keep this sender's claims fresh while it runs, so no other sender takes them."""
        while not self._finished.wait(self.heartbeat):
            try:
                self.store.beat_claims(self.claim, now=self.claim_clock())
            except Exception:  # a missed beat is retried at the next one; it is logged
                logger.exception("a heartbeat on this sender's claims failed")

    def _others(self, should_stop: Callable[[], bool] | None) -> bool:
        """With nothing left to claim: while other senders (here or on other machines) hold
        rows, wait, and take over those whose sender went silent. True when some were given
        back to be sent; False when every row is done (or a stop was asked)."""
        while self.store.claimed_elsewhere(self.edition_id, self.claim):
            stale = self.claim_clock() - self.timeout
            released = self.store.release_abandoned(
                self.edition_id, alive=claim_is_alive, stale_before=stale
            )
            if released:
                logger.warning("%d readers of a silent sender are sent by this one", released)
                return True
            # a look a second: the last rows recorded elsewhere end this sender's wait soon
            if (should_stop is not None and should_stop()) or self._finished.wait(
                min(self.heartbeat, 1.0)
            ):
                return False
        return False

    def run(self, variants: Variants, size: int, should_stop: Callable[[], bool] | None) -> bool:
        """Send until every claimed row is recorded; True when ``should_stop`` stopped it."""
        waiting: deque[Batch] = deque()
        in_flight: dict[Future[BatchResult], Batch] = {}
        fatal: DeliveryError | None = None
        gone = ""  # why the mail server went away, when it did
        stopped = exhausted = False
        beating = threading.Thread(target=self._beat, name="send-heartbeat", daemon=True)
        beating.start()
        with ThreadPoolExecutor(self.senders.parallel, thread_name_prefix="send") as pool:
            try:
                while True:
                    while not (fatal or gone or stopped) and len(in_flight) < self.senders.parallel:
                        if not waiting:
                            if exhausted:
                                break
                            if should_stop is not None and should_stop():
                                logger.info("send stopped; `newsletter send` goes on from here")
                                stopped = True
                                break
                            exhausted = not self._claim(variants, size, waiting)
                            continue
                        job = waiting.popleft()
                        future = pool.submit(self.senders.send, job)
                        in_flight[future] = job
                    if in_flight and not (waiting or exhausted or fatal or gone or stopped):
                        # the next batch is claimed and built while the requests are in flight
                        exhausted = not self._claim(variants, size, waiting)
                    if not in_flight:
                        if (
                            exhausted
                            and not (fatal or gone or stopped)
                            and self._others(should_stop)
                        ):
                            exhausted = False
                            continue
                        break
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        in_flight.pop(future)
                        try:
                            result = future.result()
                        except DeliveryError as exc:
                            fatal = fatal or exc
                            continue
                        # what the provider accepted is recorded at once, so it is never sent again
                        self._record(sent=result.sent, failed=result.failed)
                        if result.unsent:
                            gone = gone or result.stop_reason
            except BaseException:
                self._finished.set()
                self._drain(in_flight)  # what the requests in flight did is kept,
                with contextlib.suppress(Exception):  # and the rest goes back to the queue
                    self.store.release_claim(self.claim)
                raise
        self._finished.set()
        if fatal or gone or waiting:
            self.store.release_claim(self.claim)  # unsent rows go back to the queue
        if fatal:
            raise fatal
        if gone:
            raise DeliveryError(
                f"the mail server went away mid-batch: {gone}",
                hint="Everything it accepted is recorded; run `newsletter send` again to finish.",
            )
        return stopped

    def _drain(self, in_flight: Mapping[Future[BatchResult], Batch]) -> None:
        """After an unexpected error: wait for the calls in flight and record what they did,
        so their readers are not sent again by the next run."""
        for future in in_flight:
            try:
                result = future.result()
                self._record(sent=result.sent, failed=result.failed)
            except Exception:  # the first error is the one raised
                logger.exception("a request in flight could not be recorded")

    def _claim(self, variants: Variants, size: int, waiting: deque[Batch]) -> bool:
        """Claim the next batch and queue its mailer calls; False when nothing was left."""
        self.batches += 1
        batch = self.store.claim_batch(
            self.edition_id,
            claim=f"{self.claim}:{self.batches}",
            size=size,
            now=self.claim_clock(),
        )
        waiting.extend(self._jobs(variants, batch))
        return bool(batch)

    def _jobs(self, variants: Variants, batch: list[tuple[int, Subscriber]]) -> list[Batch]:
        """A batch's mailer calls, one per variant; readers with nothing to get are recorded."""
        calls, skipped = variants.batches(batch, edition_id=self.edition_id, day=self.day)
        if skipped:
            self._record(skipped=skipped)
        return calls

    def _record(
        self,
        *,
        sent: Mapping[int, str] | None = None,
        failed: Mapping[int, str] | None = None,
        skipped: Mapping[int, str] | None = None,
    ) -> None:
        self.store.record_deliveries(sent=sent, failed=failed, skipped=skipped, now=self.now())
        counts = [len(x or ()) for x in (sent, failed, skipped)]
        self.sent, self.failed, self.skipped = (
            self.sent + counts[0],
            self.failed + counts[1],
            self.skipped + counts[2],
        )
        self.done += sum(counts)
        if self.progress is not None:
            self.progress(self.done, self.total)


def _dry_run(
    config: Config,
    store: Store,
    mailer: Mailer,
    *,
    now: Callable[[], datetime],
    day: date,
    started: float,
) -> SendReport:
    """Everything but the sending: nothing is stored; SendGrid validates in sandbox mode."""
    stored = store.edition(day)
    if stored is not None:
        edition = stored.edition
    else:
        built = pipeline.build(config, store, now=now())
        if built.edition is None:
            raise EditionError(f"no edition for {day}: {built.reason}", day=day)
        edition = built.edition
    variants = Variants(config, edition)
    size = min(config.file.delivery.batch_size, mailer.max_batch)
    sent = failed = skipped = 0
    after = 0
    while readers := store.confirmed_readers(after_id=after, size=size):
        after = readers[-1].id
        calls, left_out = variants.batches(enumerate(readers), edition_id=0, day=day, dry_run=True)
        skipped += len(left_out)
        for call in calls:
            result = mailer.send_batch(call)
            sent += len(result.sent)
            failed += len(result.failed)
    variants.log()
    return SendReport(day, sent, failed, skipped, 0, time.perf_counter() - started, dry_run=True)


def send_test(
    config: Config, mailer: Mailer, email: RenderedEmail, address: str, *, day: date
) -> str:
    """One copy marked as a test to ``address``; returns the provider's message id."""
    marked = replace(email, subject=f"[TEST] {email.subject}")
    values = personalize.preview_values(config.publication.base_url)
    recipient = Recipient(0, 0, address, "", values)
    result = mailer.send_batch(Batch(marked, (recipient,), 0, day))
    if result.failed:
        raise DeliveryError(
            f"the test copy to {address} failed: {result.failed[0]}",
            reader=address,
            hint="Check the delivery settings in the config.",
        )
    return result.sent[0]
