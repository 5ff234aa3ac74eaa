"""The rendered variants of an edition: one email per choice of sectors, rendered on first
need and kept for every reader who made the same choice; with a store, kept there too
(``store.variants``), so that the scheduler's next pass, another bucket or another sender of
the same frozen edition renders none of them again.

A send that will need many variants (``prepare``) has them rendered ahead, in the order its
claims will need them, by a worker process on another core: the sender's own thread, which
claims, splits and records, is the send's bottleneck once requests overlap.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from newsletter.config import Config
from newsletter.edition import digest, render
from newsletter.edition.watchlist import Blocks, Watchlists
from newsletter.errors import NewsletterError
from newsletter.models import Batch, Edition, Recipient, RenderedEmail, Subscriber, SubscriberStatus
from newsletter.readers.links import reader_values
from newsletter.records import Claim
from newsletter.runtime import light_workers, process_pool, warm_process_pool
from newsletter.store import Store

logger = logging.getLogger("newsletter.delivery.deliver")

AHEAD_FROM = 32  # variants a send needs before they are rendered ahead in a worker process
RENDERER = "newsletter.edition.render"  # what the worker imports before its first job


def warm_renderer(store: Store) -> None:
    """With a second core and at least ``AHEAD_FROM`` confirmed readers (enough to need as many
    variants, perhaps), start the worker's server now, while the edition is built and the
    ledger seeded: the render worker then starts at once."""
    if (os.cpu_count() or 1) >= 2 and store.readers.confirmed_at_least(AHEAD_FROM):
        warm_process_pool(RENDERER)


@dataclass
class Variants:
    """One rendered variant per combination of sectors, made on first need."""

    config: Config
    edition: Edition
    store: Store | None = None  # where the frozen edition's variants are kept
    edition_id: int = 0
    now: Callable[[], datetime] | None = None  # the send's clock: each reader's greeting

    def __post_init__(self) -> None:
        self._env = render.make_environment(self.config.templates_dir)
        self._settings = render.settings_for(self.config)
        follow = self.config.file.watchlist
        self._watchlists = Watchlists(self.edition, follow.aliases, limit=follow.max_stories)
        self._blocks = Blocks(functools.partial(render.render_page, self._env))
        self._cache: dict[tuple[str, ...], RenderedEmail | None] = {}
        self._known = frozenset(self.config.sector_slugs)
        self._pool: ProcessPoolExecutor | None = None
        self._ahead: dict[tuple[str, ...], Future[RenderedEmail | None]] = {}
        self._new: dict[tuple[str, ...], RenderedEmail] = {}  # rendered here, to keep
        self._looked: set[tuple[str, ...]] = set()  # choices looked up in the store already
        self.rendered = 0  # variants rendered,
        self.seconds = 0.0  # the time it took,
        self.largest = 0  # and the largest HTML, in bytes

    def prepare(self, choices: Iterable[tuple[str, ...]]) -> None:
        """Render these choices ahead, in this order, in a worker process (when there are
        enough of them to be worth it, and a second core)."""
        wanted = list(dict.fromkeys(self._chosen(c) for c in choices))
        wanted = [c for c in wanted if c not in self._cache]
        self._cache.update(self._kept(wanted))
        wanted = [c for c in wanted if c not in self._cache]
        if len(wanted) < AHEAD_FROM or (os.cpu_count() or 1) < 2:
            return
        self._pool = process_pool(
            1,
            preload=RENDERER,
            initializer=render.start_worker,
            initargs=(self.config.templates_dir, self.edition, self._settings),
        )
        with light_workers():  # the worker starts with the first job
            for chosen in wanted:
                self._ahead[chosen] = self._pool.submit(render.render_choice, chosen)

    def close(self) -> None:
        """Stop the worker, if one was started (what it had not rendered yet is dropped: a
        later need renders it here), and keep what was rendered. Called again, it keeps what
        was rendered since."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._ahead = {}
        if self.store is not None and self._new:
            try:  # a cache: a database that fails now costs the next pass a render, no more
                self.store.variants.keep_variants(self.edition_id, self._new)
            except NewsletterError as exc:
                logger.warning("the rendered variants could not be kept: %s", exc.message)
            self._new = {}

    def _kept(self, choices: list[tuple[str, ...]]) -> dict[tuple[str, ...], RenderedEmail]:
        """These choices' variants as the store keeps them (rendered by an earlier pass or
        another sender of the frozen edition), read only when a send needs them."""
        choices = [c for c in choices if c not in self._looked]  # each looked up once
        self._looked.update(choices)
        if self.store is None or not choices:
            return {}
        return self.store.variants.stored_variants(self.edition_id, choices)

    def _chosen(self, sectors: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s for s in sectors if s in self._known)

    def for_reader(self, subscriber: Subscriber) -> RenderedEmail | None:
        cached = self._cache.get(subscriber.sectors)
        if cached is not None:
            return cached
        chosen = self._chosen(subscriber.sectors)
        if chosen not in self._cache and chosen not in self._ahead:
            self._cache.update(self._kept([chosen]))  # kept by another pass or sender
        if chosen not in self._cache:
            started = time.perf_counter()
            ahead = self._ahead.pop(chosen, None)
            if ahead is not None:
                email = ahead.result()
            else:
                sections = digest.layout(self.edition, chosen)
                email = (
                    render.render_email(
                        self._env, self.edition, sections, settings=self._settings, chosen=chosen
                    )
                    if sections
                    else None
                )
            self.seconds += time.perf_counter() - started
            if email is not None:
                self.rendered += 1
                self.largest = max(self.largest, len(email.html.encode()))
                self._new[chosen] = email
            self._cache[chosen] = email
        self._cache[subscriber.sectors] = self._cache[chosen]
        return self._cache[chosen]

    def batches(
        self,
        claims: Iterable[Claim],
        *,
        edition_id: int,
        day: date,
        dry_run: bool = False,
        per_call: int = 1000,
    ) -> tuple[list[Batch], dict[int, str]]:
        """Claimed readers grouped into mailer calls per variant (``per_call`` readers at most
        each), and those left out with the reason (not confirmed any more, or nothing in their
        sectors today)."""
        skipped: dict[int, str] = {}
        groups: dict[int, tuple[RenderedEmail, list[Recipient]]] = {}
        base_url = self.config.publication.base_url
        hour = _Hours(self.config.file.schedule.timezone, self.now() if self.now else None)
        for delivery_id, reader in ((c.delivery_id, c.reader) for c in claims):
            if reader.status != SubscriberStatus.CONFIRMED:
                skipped[delivery_id] = f"reader is {reader.status}"
                continue
            email = self.for_reader(reader)
            if email is None:
                skipped[delivery_id] = "no story in the reader's sectors today"
                continue
            values = reader_values(base_url, reader, hour=hour(reader.timezone))
            if reader.watchlist:  # the reader's block, filled at the variant's markers
                values = {
                    **values,
                    **self._blocks.values(self._watchlists.matches(reader.watchlist)),
                }
            recipient = Recipient(delivery_id, reader, values)
            groups.setdefault(id(email), (email, []))[1].append(recipient)
        calls = [
            Batch(email, tuple(recipients[start : start + per_call]), edition_id, day, dry_run)
            for email, recipients in groups.values()
            for start in range(0, len(recipients), per_call)
        ]
        return calls, skipped

    def log(self) -> None:
        logger.info(
            "rendered %d variants in %.2f s (largest HTML %.1f KB)",
            self.rendered,
            self.seconds,
            self.largest / 1024,
        )


class _Hours:
    """The local hour at ``at`` in each reader's time zone ("": the schedule's ``default``),
    worked out once a zone; None without a clock, or for a zone this machine does not know."""

    def __init__(self, default: str, at: datetime | None) -> None:
        self.default, self.at = default, at
        self.known: dict[str, int | None] = {}

    def __call__(self, zone: str) -> int | None:
        if self.at is None:
            return None
        if zone not in self.known:
            try:
                self.known[zone] = self.at.astimezone(ZoneInfo(zone or self.default)).hour
            except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
                self.known[zone] = None
        return self.known[zone]
