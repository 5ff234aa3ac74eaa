"""The rendered variants of an edition: one email per choice of sectors, rendered on first
need and kept for every reader who made the same choice."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from newsletter import digest, pipeline, render
from newsletter.config import Config
from newsletter.mailers import reader_values
from newsletter.models import Batch, Edition, Recipient, RenderedEmail, Subscriber, SubscriberStatus

logger = logging.getLogger("newsletter.delivery")


@dataclass
class Variants:
    """One rendered variant per combination of sectors, made on first need."""

    config: Config
    edition: Edition

    def __post_init__(self) -> None:
        self._env = render.make_environment(self.config.templates_dir)
        self._settings = pipeline.render_settings(self.config)
        self._cache: dict[tuple[str, ...], RenderedEmail | None] = {}
        self._known = frozenset(self.config.sector_slugs)
        self.rendered = 0  # variants rendered,
        self.seconds = 0.0  # the time it took,
        self.largest = 0  # and the largest HTML, in bytes

    def for_reader(self, subscriber: Subscriber) -> RenderedEmail | None:
        cached = self._cache.get(subscriber.sectors)
        if cached is not None:
            return cached
        chosen = tuple(s for s in subscriber.sectors if s in self._known)
        if chosen not in self._cache:
            started = time.perf_counter()
            sections = digest.layout(self.edition, chosen)
            email = (
                render.render_email(self._env, self.edition, sections, settings=self._settings)
                if sections
                else None
            )
            self.seconds += time.perf_counter() - started
            if email is not None:
                self.rendered += 1
                self.largest = max(self.largest, len(email.html.encode()))
            self._cache[chosen] = email
        self._cache[subscriber.sectors] = self._cache[chosen]
        return self._cache[chosen]

    def batches(
        self,
        readers: Iterable[tuple[int, Subscriber]],
        *,
        edition_id: int,
        day: date,
        dry_run: bool = False,
    ) -> tuple[list[Batch], dict[int, str]]:
        """Readers (delivery id, reader) grouped into one mailer call per variant, and those left
        out with the reason (not confirmed any more, or nothing in their sectors today)."""
        skipped: dict[int, str] = {}
        groups: dict[int, tuple[RenderedEmail, list[Recipient]]] = {}
        base_url = self.config.publication.base_url
        for delivery_id, reader in readers:
            if reader.status != SubscriberStatus.CONFIRMED:
                skipped[delivery_id] = f"reader is {reader.status}"
                continue
            email = self.for_reader(reader)
            if email is None:
                skipped[delivery_id] = "no story in the reader's sectors today"
                continue
            values = reader_values(base_url, reader)
            recipient = Recipient(delivery_id, reader.id, reader.email, reader.name, values)
            groups.setdefault(id(email), (email, []))[1].append(recipient)
        calls = [
            Batch(email, tuple(recipients), edition_id, day, dry_run)
            for email, recipients in groups.values()
        ]
        return calls, skipped

    def log(self) -> None:
        logger.info(
            "rendered %d variants in %.2f s (largest HTML %.1f KB)",
            self.rendered,
            self.seconds,
            self.largest / 1024,
        )
