"""Readers and their consent: subscribers (``ReaderStore``: the basics here, the consent
history, suppressions, erasure and the bulk import in ``consent``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, null, select, update

from newsletter.models import (
    DeliveryStatus,
    Frequency,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from newsletter.records import SavedReader
from newsletter.store.consent import ConsentQueries, keyed_hash
from newsletter.store.imports import ImportQueries
from newsletter.store.ledger import ACTIVE
from newsletter.store.rows import subscriber_record
from newsletter.store.tables import deliveries, subscribers, suppressions


class ReaderStore(ConsentQueries, ImportQueries):
    """Readers, their tokens and consent history, and the addresses never to mail again."""

    def upsert_subscriber(
        self,
        email: str,
        *,
        name: str | None,
        sectors: Sequence[str] | None,
        status: SubscriberStatus,
        token: str,
        now: datetime,
    ) -> SavedReader:
        """Add a reader, or update the name and sectors of a known one (None: kept; a new
        reader's are empty: no name, every sector)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
            if row is None:
                conn.execute(
                    insert(subscribers).values(
                        email=email,
                        name=name or "",
                        sectors=json.dumps(list(sectors or ())),
                        status=status,
                        token=token,
                        created_at=now,
                        updated_at=now,
                    )
                )
                created = True
            else:
                given: dict[str, str] = {}
                if name is not None:
                    given["name"] = name
                if sectors is not None:
                    given["sectors"] = json.dumps(list(sectors))
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == row.id)
                    .values(**given, updated_at=now)
                )
                created = False
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).one()
        return SavedReader(subscriber_record(row), created)

    def search_readers(self, query: str, *, limit: int = 50) -> list[Subscriber]:
        """Readers whose address starts with ``query`` (through the address's index), else
        those whose address holds it anywhere; at most ``limit``, by address."""
        text = query.strip().lower()
        if not text:
            return []
        starts = subscribers.c.email.between(text, text + "\uffff")
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        within = subscribers.c.email.like(f"%{escaped}%", escape="\\")
        with self.engine.connect() as conn:
            for where in (starts, within):
                rows = conn.execute(
                    select(subscribers).where(where).order_by(subscribers.c.email).limit(limit)
                ).all()
                if rows:
                    return [subscriber_record(r) for r in rows]
        return []

    def status_counts(self) -> dict[SubscriberStatus, int]:
        """How many readers have each status."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
            ).all()
        return {SubscriberStatus(status): int(n) for status, n in rows}

    def joined_by(self, at: datetime) -> bool:
        """Whether a confirmed reader was added at ``at`` or before."""
        query = select(subscribers.c.id).where(
            subscribers.c.status == SubscriberStatus.CONFIRMED, subscribers.c.created_at <= at
        )
        with self.engine.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def confirmed_at_least(self, count: int) -> bool:
        """Whether ``count`` readers or more are confirmed (reads no more than that)."""
        some = (
            select(subscribers.c.id)
            .where(subscribers.c.status == SubscriberStatus.CONFIRMED)
            .limit(count)
            .subquery()
        )
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(some)).scalar_one()) >= count

    def subscriber_list(self, *, status: SubscriberStatus | None = None) -> list[Subscriber]:
        query = select(subscribers).order_by(subscribers.c.id)
        if status is not None:
            query = query.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            return [subscriber_record(row) for row in conn.execute(query)]

    def confirmed_readers(
        self, *, after_id: int, size: int, frequency: Frequency, edition_id: int | None = None
    ) -> list[tuple[Subscriber, DeliveryStatus | None]]:
        """Confirmed readers of ``frequency`` in id order, a page at a time (for a dry run),
        each with their row's status in the ledger of ``edition_id`` (None: no row yet)."""
        status = deliveries.c.status if edition_id is not None else null()
        query = select(subscribers, status.label("ledger_status"))
        if edition_id is not None:
            query = query.outerjoin(
                deliveries,
                (deliveries.c.subscriber_id == subscribers.c.id)
                & (deliveries.c.edition_id == edition_id),
            )
        with self.engine.connect() as conn:
            rows = conn.execute(
                query.where(
                    subscribers.c.status == ACTIVE,
                    subscribers.c.frequency == frequency,
                    subscribers.c.id > after_id,
                )
                .order_by(subscribers.c.id)
                .limit(size)
            ).all()
        status_of = {s.value: s for s in DeliveryStatus}
        return [(subscriber_record(row), status_of.get(row.ledger_status)) for row in rows]

    def suppress(self, email: str, reason: SuppressionReason, *, now: datetime) -> None:
        """Add an address to the suppression list (kept as a keyed hash), once."""
        key = keyed_hash(self.privacy_key, email)
        with self.engine.begin() as conn:
            known = conn.execute(
                select(suppressions.c.email_hash).where(suppressions.c.email_hash == key)
            ).first()
            if known is None:
                conn.execute(insert(suppressions).values(email_hash=key, reason=reason, at=now))

    def suppression_reason(self, email: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(suppressions.c.reason).where(
                    suppressions.c.email_hash == keyed_hash(self.privacy_key, email)
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)
