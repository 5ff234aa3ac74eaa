"""``send_edition``: every confirmed reader gets the day's edition exactly once.

1. The edition of the day is built (or the stored one reused) and frozen: a resumed send sends
   the same stories.
2. The ledger gets one pending row per confirmed reader (unique per edition and reader).
3. Batches are claimed, sent, then recorded. A reader who left or bounced since the edition was
   built is skipped at batch time. Claims of a sender that died are released first.

After a crash at any moment, running ``send`` again finishes the edition: nobody is missed, and
only the readers of the single batch in flight at the crash can get a second copy (the provider
may have accepted it before the crash was recorded). Two sends at once never claim the same
rows. A fatal mailer error (a refused API key) gives the batch back and stops the send.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from newsletter import digest, pipeline, render
from newsletter.config import Config
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.mailers import Mailer, reader_values
from newsletter.models import Edition, Recipient, RenderedEmail, SendReport, Subscriber
from newsletter.store import Store

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


def _claim_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim_is_alive(claim: str) -> bool:
    """A ``host:pid[:...]`` holder on this host is alive while its process is; others are trusted.

    Used for the ledger's batch claims and for the scheduler's lock.
    """
    host, _, rest = claim.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Variants:
    """One rendered variant per combination of sectors, made on first need."""

    config: Config
    edition: Edition

    def __post_init__(self) -> None:
        self._env = render.make_environment(self.config.templates_dir)
        self._settings = pipeline.render_settings(self.config)
        self._cache: dict[tuple[str, ...], RenderedEmail | None] = {}

    def for_reader(self, subscriber: Subscriber) -> RenderedEmail | None:
        chosen = tuple(s for s in subscriber.sectors if s in self.config.sector_slugs)
        if chosen not in self._cache:
            sections = digest.layout(self.edition, chosen)
            self._cache[chosen] = (
                render.render_email(self._env, self.edition, sections, settings=self._settings)
                if sections
                else None
            )
        return self._cache[chosen]

    @property
    def count(self) -> int:
        return len(self._cache)


def frozen_edition(
    config: Config, store: Store, *, now: datetime, day: date
) -> tuple[int, Edition]:
    """The day's edition as stored and frozen, built first when there is none yet."""
    stored = store.edition(day)
    if stored is not None and stored[1] in {"frozen", "sending", "sent"}:
        ref = store.edition_ref(day)
        assert ref is not None
        return ref[0], stored[0]
    if day != pipeline.edition_date_for(config, now):
        raise NewsletterError(
            f"no edition of {day} was built, and only today's edition can be built",
            hint="Leave out --date to send today's edition.",
        )
    built = pipeline.build(config, store, now=now)
    if built.edition is None:
        raise NewsletterError(
            f"no edition for {day}: {built.reason}",
            hint="Nothing was sent. Collect again later, or check the feeds: newsletter status",
        )
    if not store.save_edition(built.edition, status="frozen", now=now):
        stored = store.edition(day)  # another sender froze it first: send that one
        if stored is None or stored[1] not in {"frozen", "sending", "sent"}:
            raise NewsletterError(
                f"the edition of {day} could not be stored",
                hint="Run `newsletter send` again; check that the database is writable.",
            )
    ref = store.edition_ref(day)
    stored = store.edition(day)
    assert ref is not None and stored is not None
    return ref[0], stored[0]


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
) -> SendReport:
    """Deliver the edition of ``day`` (today by default) to every confirmed reader once.

    Failed deliveries stay failed (the edition counts as sent) until ``retry_failed``.
    ``should_stop`` is asked between batches: a stop finishes and records the batch in flight.
    """
    started = time.perf_counter()
    day = day or pipeline.edition_date_for(config, now())
    if dry_run:
        return _dry_run(config, store, mailer, now=now, day=day, started=started)
    edition_id, edition = frozen_edition(config, store, now=now(), day=day)
    store.set_edition_status(edition_id, "sending", now=now())
    store.seed_deliveries(edition_id)
    if retry_failed:
        store.retry_failed(edition_id)
    stale = now() - timedelta(minutes=config.file.delivery.claim_timeout_minutes)
    released = store.release_abandoned(edition_id, alive=claim_is_alive, stale_before=stale)
    if released:
        logger.warning("%d readers of an interrupted send are sent again", released)
    before = store.delivery_counts(edition_id)
    total = sum(before.get(k, 0) for k in ("pending", "claimed"))
    already = before.get("sent", 0)
    variants = _Variants(config, edition)
    size = min(config.file.delivery.batch_size, mailer.max_batch)
    claim = _claim_id()
    sent = failed = skipped = done = 0
    stopped = False
    while True:
        if should_stop is not None and should_stop():
            logger.info("send stopped after a whole batch; `newsletter send` goes on from here")
            stopped = True
            break
        batch = store.claim_batch(edition_id, claim=claim, size=size, now=now())
        if not batch:
            break
        try:
            s, f, k = _send_batch(config, store, mailer, variants, batch, edition_id, day, now)
        except DeliveryError:
            store.release_claim(claim)
            raise
        sent, failed, skipped, done = sent + s, failed + f, skipped + k, done + len(batch)
        if progress is not None:
            progress(done, total)
    counts = store.delivery_counts(edition_id)
    if not counts.get("pending") and not counts.get("claimed"):
        store.set_edition_status(edition_id, "sent", now=now())
    seconds = time.perf_counter() - started
    return SendReport(day, sent, failed, skipped, already, seconds, stopped=stopped)


def _send_batch(
    config: Config,
    store: Store,
    mailer: Mailer,
    variants: _Variants,
    batch: list[tuple[int, Subscriber]],
    edition_id: int,
    day: date,
    now: Callable[[], datetime],
) -> tuple[int, int, int]:
    skipped: dict[int, str] = {}
    groups: dict[int, tuple[RenderedEmail, list[Recipient]]] = {}
    for delivery_id, reader in batch:
        if reader.status != "confirmed":
            skipped[delivery_id] = f"reader is {reader.status}"
            continue
        email = variants.for_reader(reader)
        if email is None:
            skipped[delivery_id] = "no story in the reader's sectors today"
            continue
        recipient = Recipient(
            delivery_id,
            reader.id,
            reader.email,
            reader.name,
            reader_values(config.publication.base_url, reader),
        )
        groups.setdefault(id(email), (email, []))[1].append(recipient)
    sent: dict[int, str] = {}
    failed: dict[int, str] = {}
    stop = ""
    for email, recipients in groups.values():
        result = mailer.send_batch(email, recipients, edition_id=edition_id, edition_date=day)
        sent.update(result.sent)
        failed.update(result.failed)
        if result.unsent:
            stop = result.stop_reason
            break
    # what the provider accepted is recorded before anything else, so it is never sent again
    store.record_deliveries(sent=sent, failed=failed, skipped=skipped, now=now())
    if stop:
        raise DeliveryError(
            f"the mail server went away mid-batch: {stop}",
            hint="Everything it accepted is recorded; run `newsletter send` again to finish.",
        )
    return len(sent), len(failed), len(skipped)


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
        edition = stored[0]
    else:
        built = pipeline.build(config, store, now=now())
        if built.edition is None:
            raise NewsletterError(f"no edition for {day}: {built.reason}")
        edition = built.edition
    variants = _Variants(config, edition)
    size = min(config.file.delivery.batch_size, mailer.max_batch)
    sent = failed = skipped = 0
    after = 0
    while readers := store.confirmed_readers(after_id=after, size=size):
        after = readers[-1].id
        groups: dict[int, tuple[RenderedEmail, list[Recipient]]] = {}
        for n, reader in enumerate(readers):
            email = variants.for_reader(reader)
            if email is None:
                skipped += 1
                continue
            values = reader_values(config.publication.base_url, reader)
            recipient = Recipient(n, reader.id, reader.email, reader.name, values)
            groups.setdefault(id(email), (email, []))[1].append(recipient)
        for email, recipients in groups.values():
            result = mailer.send_batch(
                email, recipients, edition_id=0, edition_date=day, dry_run=True
            )
            sent += len(result.sent)
            failed += len(result.failed)
    return SendReport(day, sent, failed, skipped, 0, time.perf_counter() - started, dry_run=True)


def send_test(
    config: Config, mailer: Mailer, email: RenderedEmail, address: str, *, day: date
) -> str:
    """One copy marked as a test to ``address``; returns the provider's message id."""
    marked = replace(email, subject=f"[TEST] {email.subject}")
    values = render.preview_values(config.publication.base_url)
    recipient = Recipient(0, 0, address, "", values)
    result = mailer.send_batch(marked, [recipient], edition_id=0, edition_date=day)
    if result.failed:
        raise DeliveryError(
            f"the test copy to {address} failed: {result.failed[0]}",
            hint="Check the delivery settings in the config.",
        )
    return result.sent[0]
