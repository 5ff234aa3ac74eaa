"""``send_edition``: every confirmed reader gets the day's edition exactly once.

1. Outcomes an earlier send on this machine could not record (its journal) are recorded.
2. The edition of the day is built (or the stored one reused) and frozen: a resumed send sends
   the same stories.
3. The ledger gets one pending row per confirmed reader (unique per edition and reader).
4. Batches are claimed, split into one mailer call per variant, sent with at most
   ``delivery.readers_in_flight`` readers (and the mailer's ``parallel`` calls) in flight, and
   each call's outcome is recorded as soon as it returns (``sending.py``). A reader who left or
   bounced since the edition was built is skipped at batch time. Claims of a sender that died
   are released first.

After a crash at any moment, running ``send`` again finishes the edition: nobody is missed, and
only the readers in flight at the crash can get a second copy (the provider may have accepted
them before the outcome was recorded): at most ``readers_in_flight``. Claimed readers whose call
had not started are sent once, later. Two sends at once never claim the same rows. A fatal
mailer error (a refused API key) lets the calls in flight finish and be recorded, gives the
rest back and stops the send. A database that stops taking writes loses no outcome: held,
journaled, recorded before anything new is claimed (``sending.py``, ``journal.py``). A stop
asked for starts nothing new, finishes and records the calls in flight, and gives back the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from newsletter.config import Config
from newsletter.delivery.journal import BYTES_PER_READER, Journal, apply_journals, database_key
from newsletter.delivery.mailers import Mailer
from newsletter.delivery.mailers.senders import Senders
from newsletter.delivery.sending import SMALLEST_CALL, Limits, Progress, Sending
from newsletter.delivery.variants import Variants
from newsletter.errors import DeliveryError
from newsletter.models import (
    Batch,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Recipient,
    RenderedEmail,
    SendReport,
    Subscriber,
)
from newsletter.models.readers import Slot
from newsletter.readers.links import preview_values
from newsletter.records import Claim, StoredEdition
from newsletter.store import Store
from newsletter.store.claims import ClaimRule, claim_id, claim_is_alive

logger = logging.getLogger(__name__)

# mailer calls that share the readers in flight: a call holds at most that share of them (250
# of the default 2,000), so the room one call leaves takes the next one
CALLS_IN_FLIGHT = 8
MOST_CLAIMED = 5000  # readers one claim holds at most, whatever the room


def deliver(
    config: Config,
    store: Store,
    mailer: Mailer,
    edition: StoredEdition,
    *,
    now: Callable[[], datetime],
    retry_failed: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    claim_clock: Callable[[], datetime] | None = None,
    slots: Sequence[Slot] | None = None,
    final: bool = True,
) -> SendReport:
    """Deliver a frozen edition once to every confirmed reader of its kind, or (``slots``, the
    scheduler's buckets: ``flows.buckets``) to theirs; ``final``: the edition counts as sent
    once none is left. Failed deliveries stay failed until ``retry_failed``. ``claim_clock``
    times the claims and their heartbeats (default ``now``; the commands give the wall clock,
    which other senders judge a silent one by). ``should_stop`` is asked all along: a stop
    starts nothing new, finishes and records the requests in flight."""
    started = time.perf_counter()
    claim_clock = claim_clock or now
    owner = claim_id()
    edition_id, day = edition.id, edition.edition.edition_date
    limits = _limits(config, mailer)
    _open_ledger(config, store, edition, retry_failed, limits, slots, now(), claim_clock())
    before = store.ledger.delivery_counts(edition_id)
    total = sum(before.get(k, 0) for k in (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED))
    already = before.get(DeliveryStatus.SENT, 0)
    journal = _journal(config, owner, limits)
    sending = Sending(
        store=store,
        senders=Senders(mailer),
        edition_id=edition_id,
        day=day,
        claim=owner,
        limits=limits,
        journal=journal,
        now=now,
        claim_clock=claim_clock,
        progress=progress,
        total=total,
    )
    variants = Variants(config, edition.edition, store, edition_id, now=now)
    try:
        variants.prepare(store.ledger.pending_choices(edition_id))
        stopped = sending.run(variants, should_stop)
    finally:
        variants.close()
        sending.senders.close()
        journal.close()
    variants.log()
    if final:
        close_if_done(store, edition_id, now=now())
    seconds = time.perf_counter() - started
    counts = (sending.sent, sending.failed, sending.skipped, already, seconds)
    return SendReport(day, *counts, stopped=stopped, kind=edition.edition.kind)


def close_if_done(store: Store, edition_id: int, *, now: datetime) -> None:
    """The edition is sent once no row is pending or claimed (failed ones wait for a retry)."""
    counts = store.ledger.delivery_counts(edition_id)
    if not counts.get(DeliveryStatus.PENDING) and not counts.get(DeliveryStatus.CLAIMED):
        store.editions.set_edition_status(edition_id, EditionStatus.SENT, now=now)


def _open_ledger(
    config: Config,
    store: Store,
    edition: StoredEdition,
    retry_failed: bool,
    limits: Limits,
    slots: Sequence[Slot] | None,
    now: datetime,
    at: datetime,
) -> None:
    """The ledger ready to claim from: what an earlier send on this machine journaled recorded
    first, a row for every confirmed reader, failed rows queued again when asked, and the rows
    of dead senders (or silent for ``limits.timeout`` at ``at``, the claims' clock) given back."""
    apply_journals(
        config.journal_dir,
        store.ledger,
        database=database_key(config.database_url),
        alive=claim_is_alive,  # a journal named for another host is that host's to apply
    )
    edition_id = edition.id
    store.editions.set_edition_status(edition_id, EditionStatus.SENDING, now=now)
    if retry_failed:  # the failed readers again, and no reader who has no row yet
        store.ledger.retry_failed(edition_id)
    else:
        frequency = edition.edition.kind.readers
        store.ledger.seed_deliveries(edition_id, slots=slots, frequency=frequency)
    released = store.ledger.release_abandoned(edition_id, rule=ClaimRule(limits.timeout), now=at)
    if released:
        logger.warning("%d readers of an interrupted send are sent again", released)


def _limits(config: Config, mailer: Mailer) -> Limits:
    settings = config.file.delivery
    batch_size = min(settings.batch_size, mailer.max_batch, settings.readers_in_flight)
    share = settings.readers_in_flight // CALLS_IN_FLIGHT
    # past 8,000 readers in flight a claim holds an eighth of them (2,500 of 20,000, 5,000 at
    # most), several calls' worth: the ledger is asked less often, and a variant's readers go
    # in full calls; below that, a call's worth
    claim_size = min(share, MOST_CLAIMED) if share > max(batch_size, 1000) else batch_size
    return Limits(
        claim_size=claim_size,
        readers_in_flight=settings.readers_in_flight,
        per_call=min(batch_size, max(SMALLEST_CALL, share)),
        heartbeat=settings.heartbeat_seconds,
        timeout=timedelta(minutes=settings.claim_timeout_minutes),
        database_wait=settings.database_wait_seconds,
    )


def _journal(config: Config, owner: str, limits: Limits) -> Journal:
    """This sender's journal, its bytes reserved now, while the disk has room."""
    journal = Journal(
        config.journal_dir,
        owner=owner,
        database=database_key(config.database_url),
        reserve=journal_reserve(limits.readers_in_flight, limits.claim_size),
    )
    journal.open()
    return journal


def journal_reserve(readers_in_flight: int, claim_size: int) -> int:
    """Bytes a sender's journal reserves: enough for every reader in flight, and a claim
    more (the readers left out of a claimed batch are outcomes too)."""
    return (readers_in_flight + claim_size) * BYTES_PER_READER


def dry_run(
    config: Config,
    store: Store,
    mailer: Mailer,
    edition: Edition,
    *,
    edition_id: int | None,
    retry_failed: bool,
    started: float,
) -> SendReport:
    """Everything but the sending: nothing is stored; SendGrid validates in sandbox mode. The
    readers are those the real send would take from the ledger of ``edition_id`` (the stored
    edition's; None: none yet): not those who have it, failed ones only on ``retry_failed``,
    and on a retry no reader without a row."""
    day, frequency = edition.edition_date, edition.kind.readers
    variants = Variants(config, edition)
    size = min(config.file.delivery.batch_size, mailer.max_batch)
    sent = failed = skipped = already = 0
    after = 0
    while page := store.readers.confirmed_readers(
        after_id=after, size=size, frequency=frequency, edition_id=edition_id
    ):
        after = page[-1][0].id
        already += sum(1 for _, status in page if status == DeliveryStatus.SENT)
        readers = [reader for reader, status in page if _would_send(status, retry_failed)]
        claims = [Claim(n, reader) for n, reader in enumerate(readers)]  # nothing claimed
        calls, left_out = variants.batches(claims, edition_id=0, day=day, dry_run=True)
        skipped += len(left_out)
        for call in calls:
            result = mailer.send_batch(call)
            sent += len(result.sent)
            failed += len(result.failed)
    variants.log()
    seconds = time.perf_counter() - started
    return SendReport(day, sent, failed, skipped, already, seconds, dry_run=True, kind=edition.kind)


def _would_send(status: DeliveryStatus | None, retry_failed: bool) -> bool:
    if status is None:  # no row: seeded by a send, not by a retry
        return not retry_failed
    if status == DeliveryStatus.FAILED:
        return retry_failed
    return status in (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED)


def send_test(
    config: Config, mailer: Mailer, email: RenderedEmail, address: str, *, day: date
) -> str:
    """One copy marked as a test to ``address``; returns the provider's message id."""
    marked = replace(email, subject=f"[TEST] {email.subject}")
    values = preview_values(config.publication.base_url)
    recipient = Recipient(0, Subscriber(0, address), values)
    result = mailer.send_batch(Batch(marked, (recipient,), 0, day))
    if result.failed:
        raise DeliveryError(
            f"the test copy to {address} failed: {result.failed[0]}",
            reader=address,
            hint="Check the delivery settings in the config.",
        )
    return result.sent[0]
