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
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

from newsletter import personalize, pipeline
from newsletter.claims import claim_id, claim_is_alive, running_here
from newsletter.config import Config
from newsletter.errors import DeliveryError, EditionError
from newsletter.journal import BYTES_PER_READER, Journal, apply_journals, database_key
from newsletter.mailers import Mailer
from newsletter.mailers.senders import Senders
from newsletter.models import (
    Batch,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Recipient,
    RenderedEmail,
    SendReport,
)
from newsletter.sending import Limits, Progress, Sending
from newsletter.store import Store
from newsletter.variants import Variants

logger = logging.getLogger(__name__)


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
    ``should_stop`` is asked all along: a stop starts nothing new, finishes and records the
    requests in flight.
    """
    started = time.perf_counter()
    day = day or pipeline.edition_date_for(config, now())
    if dry_run:
        return _dry_run(config, store, mailer, now=now, day=day, started=started)
    claim_clock = claim_clock or now
    owner = claim_id()
    # outcomes an earlier send on this machine could not record go in first
    apply_journals(
        config.journal_dir, store, database=database_key(config.database_url), alive=running_here
    )
    edition_id, edition = frozen_edition(config, store, now=now(), day=day)
    store.set_edition_status(edition_id, EditionStatus.SENDING, now=now())
    store.seed_deliveries(edition_id)
    if retry_failed:
        store.retry_failed(edition_id)
    limits = _limits(config, mailer)
    released = store.release_abandoned(
        edition_id, alive=claim_is_alive, stale_before=claim_clock() - limits.timeout
    )
    if released:
        logger.warning("%d readers of an interrupted send are sent again", released)
    before = store.delivery_counts(edition_id)
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
    variants = Variants(config, edition)
    try:
        variants.prepare(store.pending_choices(edition_id))
        stopped = sending.run(variants, should_stop)
    finally:
        variants.close()
        sending.senders.close()
        journal.close()
    variants.log()
    counts = store.delivery_counts(edition_id)
    if not counts.get(DeliveryStatus.PENDING) and not counts.get(DeliveryStatus.CLAIMED):
        store.set_edition_status(edition_id, EditionStatus.SENT, now=now())
    seconds = time.perf_counter() - started
    return SendReport(
        day, sending.sent, sending.failed, sending.skipped, already, seconds, stopped=stopped
    )


def _limits(config: Config, mailer: Mailer) -> Limits:
    settings = config.file.delivery
    return Limits(
        batch_size=min(settings.batch_size, mailer.max_batch, settings.readers_in_flight),
        readers_in_flight=settings.readers_in_flight,
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
        reserve=journal_reserve(limits.readers_in_flight),
    )
    journal.open()
    return journal


def journal_reserve(readers_in_flight: int) -> int:
    """Bytes a sender's journal reserves: enough for every reader in flight, and a batch
    more (the readers left out of a claimed batch are outcomes too)."""
    return (readers_in_flight + 1000) * BYTES_PER_READER


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
