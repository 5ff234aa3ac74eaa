"""The send flow: the day's edition built (or the stored one reused) and frozen, then delivered
to every confirmed reader once (``delivery.deliver``); a dry run; a test copy."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime

from newsletter.config import Config
from newsletter.delivery import deliver, variants
from newsletter.delivery.mailers import Mailer
from newsletter.delivery.sending import Progress
from newsletter.errors import EditionError
from newsletter.flows.build import build, edition_date_for
from newsletter.models import Edition, EditionKind, EditionStatus, SendReport
from newsletter.records import StoredEdition
from newsletter.runtime import long_lived
from newsletter.store import Store


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
    """Deliver the edition of ``day`` (today by default) to every confirmed reader once
    (``delivery.deliver``); ``dry_run`` does everything but send."""
    started = time.perf_counter()
    day = day or edition_date_for(config, now())
    if dry_run:  # the edition the send would take, and the readers its ledger would
        stored = _fixed(config, store, now(), day)
        edition = stored.edition if stored is not None else _built(config, store, now(), day)
        edition_id = stored.id if stored is not None else None
        return deliver.dry_run(
            config,
            store,
            mailer,
            edition,
            edition_id=edition_id,
            retry_failed=retry_failed,
            started=started,
        )
    if retry_failed:  # the day's sent editions, daily and weekly: a retry builds none
        return _retry(config, store, mailer, day, progress, should_stop, claim_clock, now)
    variants.warm_renderer(store)  # its start overlaps the build and the ledger's seeding
    with long_lived() as settle:
        settle()  # the modules and the config
        frozen = frozen_edition(config, store, now=now(), day=day)
        settle()  # and the frozen edition
        return deliver.deliver(
            config,
            store,
            mailer,
            frozen,
            now=now,
            retry_failed=retry_failed,
            progress=progress,
            should_stop=should_stop,
            claim_clock=claim_clock,
        )


def _retry(
    config: Config,
    store: Store,
    mailer: Mailer,
    day: date,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    claim_clock: Callable[[], datetime] | None,
    now: Callable[[], datetime],
) -> SendReport:
    """Send again to the failed readers of the day's stored editions (daily, then weekly),
    and finish one left unfinished; one report for them all."""
    stored = [e for kind in EditionKind if (e := _stored(store, day, kind)) is not None]
    if not stored:
        raise EditionError(
            f"no edition of {day} was sent, so there is no delivery to retry",
            day=day,
            hint="Send it first: newsletter send",
        )
    reports = [
        deliver.deliver(
            config,
            store,
            mailer,
            edition,
            now=now,
            retry_failed=True,
            progress=progress,
            should_stop=should_stop,
            claim_clock=claim_clock,
        )
        for edition in stored
    ]
    return SendReport(
        day,
        sent=sum(r.sent for r in reports),
        failed=sum(r.failed for r in reports),
        skipped=sum(r.skipped for r in reports),
        already_sent=sum(r.already_sent for r in reports),
        seconds=sum(r.seconds for r in reports),
        stopped=any(r.stopped for r in reports),
    )


def _stored(store: Store, day: date, kind: EditionKind) -> StoredEdition | None:
    """The day's edition of ``kind`` once a send has begun it (a frozen or approved one that
    no send has begun has no delivery to retry: a retry would close it with nobody sent)."""
    stored = store.editions.edition(day, kind)
    begun = (EditionStatus.SENDING, EditionStatus.SENT)
    return stored if stored is not None and stored.status in begun else None


def _built(config: Config, store: Store, now: datetime, day: date) -> Edition:
    # the writer wrote ahead (preview, each scheduled collect): the send never waits on it
    built = build(config, store, now=now, ask_writer=False)
    if built.edition is None:
        raise EditionError(
            f"no edition for {day}: {built.reason}",
            day=day,
            hint="Nothing was sent. Collect again later, or check the feeds: newsletter status",
        )
    return built.edition


def _fixed(config: Config, store: Store, now: datetime, day: date) -> StoredEdition | None:
    """The day's edition as stored when it is fixed (frozen, approved, sent); None when it is
    to be built, which only today's can."""
    stored = store.editions.edition(day)
    if stored is not None and stored.status in EditionStatus.fixed():
        return stored
    if day != edition_date_for(config, now):
        raise EditionError(
            f"no edition of {day} was built, and only today's edition can be built",
            day=day,
            hint="Leave out --date to send today's edition.",
        )
    return None


def frozen_edition(config: Config, store: Store, *, now: datetime, day: date) -> StoredEdition:
    """The day's edition as stored and frozen, built first when there is none yet."""
    stored = _fixed(config, store, now, day)
    if stored is not None:
        return stored
    edition = _built(config, store, now, day)
    if not store.editions.save_edition(edition, status=EditionStatus.FROZEN, now=now):
        stored = store.editions.edition(day)  # another sender froze it first: send that one
        if stored is None or stored.status not in EditionStatus.fixed():
            raise EditionError(
                f"the edition of {day} could not be stored",
                day=day,
                hint="Run `newsletter send` again; check that the database is writable.",
            )
    stored = store.editions.edition(day)
    assert stored is not None  # just stored
    return stored
