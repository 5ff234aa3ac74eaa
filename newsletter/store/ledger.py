"""Subscribers and the send ledger: the queries behind ``newsletter send``.

The ledger has one row per (edition, reader), unique. A send claims a batch of rows (status
``claimed``, with its own claim id), sends it, then records each row as ``sent``, ``failed`` or
``skipped``. A claim whose process has died is released by the next send, so nobody is missed;
only the readers of the batch that was in flight when a process died can get a second copy.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from newsletter.models import DeliveryStatus, Frequency, Subscriber, SubscriberStatus
from newsletter.models.readers import Slot
from newsletter.records import Claim, DeliveryRecord, FailedDelivery
from newsletter.store.base import foreign_keys_unchecked
from newsletter.store.tables import deliveries, editions, subscribers
from newsletter.store.workers import WorkerQueries

ACTIVE = SubscriberStatus.CONFIRMED


@functools.lru_cache(maxsize=2048)
def _sectors(raw: str) -> tuple[str, ...]:  # a few hundred distinct choices for many readers
    return tuple(json.loads(raw))


@functools.lru_cache(maxsize=4096)
def _terms(raw: str) -> tuple[str, ...]:  # watchlists: "[]" for most readers
    return tuple(json.loads(raw)) if raw != "[]" else ()


_STATUSES = {status.value: status for status in SubscriberStatus}  # a dict look-up per row
# what a reader's record is made of: the columns a claim reads (no timestamps to convert)
READER_COLUMNS = (
    subscribers.c.id,
    subscribers.c.email,
    subscribers.c.name,
    subscribers.c.sectors,
    subscribers.c.status,
    subscribers.c.token,
    subscribers.c.watchlist,
)


def subscriber_record(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        sectors=_sectors(row.sectors),
        status=_STATUSES[row.status],
        token=row.token,
        watchlist=_terms(row.watchlist),
        timezone=row.timezone,
        hour=row.delivery_hour,
        frequency=Frequency(row.frequency),
        weekday=row.weekday,
    )


class Ledger(WorkerQueries):
    """The send ledger: one row per (edition, reader); claims, outcomes, counts, and what
    several senders of one edition need of each other (``workers``)."""

    # deliveries --------------------------------------------------------------------------------

    def reader_slots(self) -> list[tuple[Slot, int]]:
        """The delivery slots of confirmed readers, each with how many readers it holds (from
        the slot index: a few hundred groups for any number of readers)."""
        columns = (
            subscribers.c.timezone,
            subscribers.c.delivery_hour,
            subscribers.c.frequency,
            subscribers.c.weekday,
        )
        query = select(*columns, func.count()).where(subscribers.c.status == ACTIVE)
        with self.engine.connect() as conn:
            rows = conn.execute(query.group_by(*columns)).all()
        return [
            (Slot(zone, hour, Frequency(frequency), weekday), int(n))
            for zone, hour, frequency, weekday, n in rows
        ]

    def seed_deliveries(
        self,
        edition_id: int,
        *,
        slots: Sequence[Slot] | None = None,
        frequency: Frequency = Frequency.DAILY,
    ) -> int:
        """A pending row for every confirmed reader who has none for this edition yet: the
        readers of ``slots``, or (None) every reader of that ``frequency``."""
        if slots is not None and not slots:
            return 0
        have = select(deliveries.c.subscriber_id).where(deliveries.c.edition_id == edition_id)
        chosen = (
            subscribers.c.frequency == frequency
            if slots is None
            else or_(*(_in_slot(slot) for slot in slots))
        )
        source = select(
            literal(edition_id, Integer),
            subscribers.c.id,
            literal(DeliveryStatus.PENDING.value, String),
            literal(0, Integer),
        ).where(
            subscribers.c.status == ACTIVE,
            chosen,
            subscribers.c.id.not_in(have),
            exists().where(editions.c.id == edition_id),  # the foreign keys, checked once
        )
        # rows of one sector combination get neighbouring ids, so a batch claimed in id order
        # holds few combinations: few requests per batch
        source = source.order_by(subscribers.c.sectors, subscribers.c.id)
        with self.engine.connect() as conn, foreign_keys_unchecked(conn):
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            if dialect is postgresql:
                # senders starting at once seed one at a time: the first adds the rows, the
                # others wait for it and find none missing (each inserting every row again,
                # to be skipped on conflict, cost the first its CPU while the rest waited)
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:kind, :edition)"),
                    {"kind": _SEED_LOCK, "edition": edition_id},
                )
            result = conn.execute(
                dialect.insert(deliveries)
                .from_select(["edition_id", "subscriber_id", "status", "attempts"], source)
                .on_conflict_do_nothing(index_elements=["edition_id", "subscriber_id"])
            )
            conn.commit()
        return int(result.rowcount or 0)

    def unseeded(self, edition_id: int, slots: Sequence[Slot]) -> int:
        """Confirmed readers of ``slots`` with no row for this edition (not sent to)."""
        if not slots:
            return 0
        have = select(deliveries.c.subscriber_id).where(deliveries.c.edition_id == edition_id)
        query = select(func.count()).where(
            subscribers.c.status == ACTIVE,
            or_(*(_in_slot(slot) for slot in slots)),
            subscribers.c.id.not_in(have),
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def claim_batch(self, edition_id: int, *, claim: str, size: int, now: datetime) -> list[Claim]:
        """Claim up to ``size`` pending rows for this sender, each with its reader.

        One UPDATE with the status checked again in its own WHERE: two senders at once can never
        both claim a row.
        """
        pending = (
            select(deliveries.c.id)
            .where(
                deliveries.c.edition_id == edition_id, deliveries.c.status == DeliveryStatus.PENDING
            )
            .order_by(deliveries.c.id)
            .limit(size)
        )
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # rows another sender is claiming are passed over, not waited for; picked once
                # (a materialized CTE: a subquery with FOR UPDATE may be scanned again, and its
                # LIMIT then no longer holds)
                picked = (
                    pending.with_for_update(skip_locked=True)
                    .cte("picked")
                    .prefix_with("MATERIALIZED")
                )
                chosen: Any = select(picked.c.id)
            else:
                chosen = pending.scalar_subquery()
            claiming = (
                update(deliveries)
                .where(deliveries.c.id.in_(chosen), deliveries.c.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.CLAIMED, claim=claim, claimed_at=now)
                .values(attempts=deliveries.c.attempts + 1)
                .returning(deliveries.c.id)
            )
            ids = conn.execute(claiming).scalars().all()
            if not ids:
                return []
            # the rows just claimed, read in their ids' range (the claim names this batch
            # alone): found by edition and status, every row in flight was read again for each
            # claim, 20,000 of them at that setting
            rows = conn.execute(
                select(deliveries.c.id.label("delivery_id"), *READER_COLUMNS)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(deliveries.c.id.between(min(ids), max(ids)), deliveries.c.claim == claim)
                .order_by(deliveries.c.id)
            ).all()
        statuses, sectors, terms = _STATUSES, _sectors, _terms
        return [  # plain tuples unpacked: a million rows a send, each made once
            Claim(
                delivery_id,
                Subscriber(
                    id_, email, name, sectors(chosen), statuses[status], token, terms(watching)
                ),
            )
            for delivery_id, id_, email, name, chosen, status, token, watching in rows
        ]

    def pending_choices(self, edition_id: int) -> list[tuple[str, ...]]:
        """The choices of sectors of the edition's readers still to send, in the order the
        claims will meet them: a pass seeds its rows in order of the readers' choice
        (``seed_deliveries``). The readers are read in their own order, each looked up in the
        ledger's (edition, reader) index, and only the distinct choices are kept: reading the
        pending rows and looking each reader up took two to three times as long at a million."""
        pending = (
            select(deliveries.c.id)
            .where(
                deliveries.c.edition_id == edition_id,
                deliveries.c.subscriber_id == subscribers.c.id,
                deliveries.c.status == DeliveryStatus.PENDING,
            )
            .exists()
        )
        chosen = select(subscribers.c.sectors).where(pending).distinct().subquery()
        query = select(chosen.c.sectors).order_by(chosen.c.sectors)
        with self.engine.connect() as conn:
            return [_sectors(raw) for raw in conn.execute(query).scalars()]

    def record_deliveries(
        self,
        *,
        sent: Mapping[int, str] | None = None,
        failed: Mapping[int, str] | None = None,
        skipped: Mapping[int, str] | None = None,
        now: datetime,
    ) -> None:
        """Record the outcome of a claimed batch (delivery id → message id or error) at once,
        in one transaction. Readers sharing an outcome (a SendGrid request's readers share its
        message id) are one UPDATE by id, in chunks of 900; the rest one executemany."""
        outcomes: dict[tuple[DeliveryStatus, str | None, str | None], list[int]] = {}
        for status, given in (
            (DeliveryStatus.SENT, sent),
            (DeliveryStatus.FAILED, failed),
            (DeliveryStatus.SKIPPED, skipped),
        ):
            for row_id, value in (given or {}).items():
                message_id, error = (
                    (value, None) if status == DeliveryStatus.SENT else (None, value)
                )
                outcomes.setdefault((status, message_id, error), []).append(row_id)
        singles = [
            {
                "row_id": ids[0],
                "status": status,
                "message_id": message_id,
                "error": error,
                "sent_at": now if status == DeliveryStatus.SENT else None,
            }
            for (status, message_id, error), ids in outcomes.items()
            if len(ids) == 1
        ]
        with self.engine.begin() as conn:
            if singles:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == bindparam("row_id"))
                    .values(
                        status=bindparam("status"),
                        message_id=bindparam("message_id"),
                        error=bindparam("error"),
                        sent_at=bindparam("sent_at"),
                        claim=None,
                    ),
                    singles,
                )
            for (status, message_id, error), ids in outcomes.items():
                for start in range(0, len(ids) if len(ids) > 1 else 0, 900):
                    conn.execute(
                        update(deliveries)
                        .where(deliveries.c.id.in_(ids[start : start + 900]))
                        .values(
                            status=status,
                            message_id=message_id,
                            error=error,
                            sent_at=now if status == DeliveryStatus.SENT else None,
                            claim=None,
                        )
                    )

    def retry_failed(self, edition_id: int) -> int:
        """Queue this edition's failed deliveries again; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.status == DeliveryStatus.FAILED,
                )
                .values(status=DeliveryStatus.PENDING, error=None)
            )
        return int(result.rowcount or 0)

    def delivery_counts(self, edition_id: int) -> dict[DeliveryStatus, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.status, func.count())
                .where(deliveries.c.edition_id == edition_id)
                .group_by(deliveries.c.status)
            ).all()
        return {DeliveryStatus(status): int(n) for status, n in rows}

    def deliveries_of(self, edition_id: int) -> list[DeliveryRecord]:
        """Every row of an edition's ledger, by the reader's address."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscribers.c.email, deliveries.c.status, deliveries.c.attempts)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(deliveries.c.edition_id == edition_id)
                .order_by(subscribers.c.email)
            ).all()
        return [DeliveryRecord(r.email, DeliveryStatus(r.status), r.attempts) for r in rows]

    def failed_deliveries(self, edition_id: int, *, limit: int = 1000) -> list[FailedDelivery]:
        """The readers whose copy of an edition failed, with the reason, by address."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscribers.c.email, deliveries.c.error)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.status == DeliveryStatus.FAILED,
                )
                .order_by(subscribers.c.email)
                .limit(limit)
            ).all()
        return [FailedDelivery(r.email, r.error or "") for r in rows]

    def last_edition_sent_to(self, subscriber_id: int) -> int | None:
        """The newest edition a reader was sent (an unsubscribe is counted against it)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(deliveries.c.edition_id)).where(
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.status == DeliveryStatus.SENT,
                )
            ).scalar_one_or_none()
        return None if value is None else int(value)


def slot_values(slot: Slot) -> dict[str, Any]:
    """A slot as the subscribers table's columns."""
    return {
        "timezone": slot.timezone,
        "delivery_hour": slot.hour,
        "frequency": slot.frequency,
        "weekday": slot.weekday,
    }


def slot_of_row(row: Any) -> Slot:
    """A reader's slot from their row's columns."""
    return Slot(row.timezone, row.delivery_hour, Frequency(row.frequency), row.weekday)


def terms_of(raw: str) -> tuple[str, ...]:
    """A stored watchlist."""
    return _terms(raw)


def _in_slot(slot: Slot) -> ColumnElement[bool]:
    """A reader of this slot, NULLs matched as NULLs."""
    hour, weekday = subscribers.c.delivery_hour, subscribers.c.weekday
    return and_(
        subscribers.c.timezone == slot.timezone,
        hour.is_(None) if slot.hour is None else hour == slot.hour,
        subscribers.c.frequency == slot.frequency,
        weekday.is_(None) if slot.weekday is None else weekday == slot.weekday,
    )


_SEED_LOCK = 724_153  # with the edition id, the advisory lock seeding runs under on PostgreSQL
