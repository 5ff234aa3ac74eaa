"""Subscribers and the send ledger: the queries behind ``newsletter send``.

The ledger has one row per (edition, reader), unique. A send claims a batch of rows (status
``claimed``, with its own claim id), sends it, then records each row as ``sent``, ``failed`` or
``skipped``. A claim whose process has died is released by the next send, so nobody is missed;
only the readers of the batch that was in flight when a process died can get a second copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
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

from newsletter.models import DeliveryStatus, Frequency, SubscriberStatus
from newsletter.models.readers import Slot
from newsletter.records import Claim, DeliveryRecord, FailedDelivery
from newsletter.store.base import foreign_keys_unchecked
from newsletter.store.rows import READER_COLUMNS, claims_of, sectors_of
from newsletter.store.tables import deliveries, editions, subscribers
from newsletter.store.workers import WorkerQueries

ACTIVE = SubscriberStatus.CONFIRMED


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

    def unseeded(self, edition_id: int, slot: Slot, *, joined_by: datetime) -> int:
        """Confirmed readers of ``slot`` who joined by then with no row for this edition (not
        sent to)."""
        have = select(deliveries.c.subscriber_id).where(deliveries.c.edition_id == edition_id)
        query = select(func.count()).where(
            subscribers.c.status == ACTIVE,
            _in_slot(slot),
            subscribers.c.created_at <= joined_by,
            subscribers.c.id.not_in(have),
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def claim_batch(self, edition_id: int, *, claim: str, size: int, now: datetime) -> list[Claim]:
        """Claim up to ``size`` pending rows for this sender, each with its reader.

        The UPDATE checks the status again in its own WHERE: two senders at once can never
        both claim a row.
        """
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                rows = _claimed_rows(conn, edition_id, claim=claim, size=size, now=now)
            else:
                rows = _claimed_rows_sqlite(conn, edition_id, claim=claim, size=size, now=now)
        return claims_of(rows)

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
            return [sectors_of(raw) for raw in conn.execute(query).scalars()]

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
                if len(ids) == 1:
                    continue
                values = {
                    "status": status,
                    "message_id": message_id,
                    "error": error,
                    "sent_at": now if status == DeliveryStatus.SENT else None,
                    "claim": None,
                }
                for rows in _id_conditions(ids):
                    conn.execute(update(deliveries).where(rows).values(values))

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


# runs of consecutive ids one UPDATE names by their bounds; more than this, by the ids
RUNS_PER_UPDATE = 16


def _id_conditions(ids: Sequence[int]) -> list[ColumnElement[bool]]:
    """Conditions that together name exactly these delivery ids, for a few UPDATEs: the runs
    of consecutive ids by their bounds (a call's readers were seeded side by side, by their
    choice of sectors: one or two runs a call), else the ids in lists of 900. Naming each of
    a thousand ids cost more than the UPDATE itself (each a bound parameter)."""
    ordered = sorted(ids)
    runs: list[tuple[int, int]] = []
    for row_id in ordered:
        if runs and row_id <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row_id)
        else:
            runs.append((row_id, row_id))
    if len(runs) <= RUNS_PER_UPDATE:
        return [or_(*(deliveries.c.id.between(low, high) for low, high in runs))]
    return [deliveries.c.id.in_(ordered[i : i + 900]) for i in range(0, len(ordered), 900)]


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


def _claiming(rows: ColumnElement[bool], *, claim: str, now: datetime) -> Any:
    """The UPDATE that claims ``rows`` while they are pending (``rows`` names the edition
    where its ids alone do not: PostgreSQL's planner, given the edition too, scanned the
    edition's pending rows for each claim)."""
    return (
        update(deliveries)
        .where(rows, deliveries.c.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CLAIMED, claim=claim, claimed_at=now)
        .values(attempts=deliveries.c.attempts + 1)
    )


def _pending(edition_id: int, size: int) -> Any:
    return (
        select(deliveries.c.id)
        .where(deliveries.c.edition_id == edition_id, deliveries.c.status == DeliveryStatus.PENDING)
        .order_by(deliveries.c.id)
        .limit(size)
    )


def _claimed_rows(
    conn: Connection, edition_id: int, *, claim: str, size: int, now: datetime
) -> Sequence[Any]:
    """PostgreSQL: rows another sender is claiming are passed over, not waited for, and the
    claimed rows come back with the UPDATE's ids (a materialized CTE: a subquery with FOR
    UPDATE may be scanned again, and its LIMIT then no longer holds)."""
    picked = (
        _pending(edition_id, size)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    claiming = _claiming(deliveries.c.id.in_(select(picked.c.id)), claim=claim, now=now)
    ids = conn.execute(claiming.returning(deliveries.c.id)).scalars().all()
    if not ids:
        return []
    return conn.execute(
        select(deliveries.c.id.label("delivery_id"), *READER_COLUMNS)
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(deliveries.c.id.between(min(ids), max(ids)), deliveries.c.claim == claim)
        .order_by(deliveries.c.id)
    ).all()


def _claimed_rows_sqlite(
    conn: Connection, edition_id: int, *, claim: str, size: int, now: datetime
) -> Sequence[Any]:
    """SQLite: the range of the next ``size`` pending ids, the UPDATE of the rows still
    pending in it, and the rows claimed read back as one JSON array. Python's driver lets go
    of the interpreter at every row it steps through and waits for it again behind the
    request threads: a thousand ids returned and a thousand rows read one by one kept the
    sender's thread waiting at 20,000 readers in flight. (The driver begins the write
    transaction at the UPDATE, which waits for the database's write lock: a row another
    sender claimed since the range was read is left out by the status checked again, and a
    range another took whole is followed by the next, read under the lock.)"""
    picked = _pending(edition_id, size).subquery()
    while True:  # again, if another sender took the whole range meanwhile (then under lock)
        low, high = conn.execute(select(func.min(picked.c.id), func.max(picked.c.id))).one()
        if low is None:
            return []
        in_range = deliveries.c.id.between(low, high)
        # the edition named: another edition's rows may have ids in the range (seeded between)
        mine = and_(deliveries.c.edition_id == edition_id, in_range)
        if conn.execute(_claiming(mine, claim=claim, now=now)).rowcount:
            break
    columns = (deliveries.c.id, *READER_COLUMNS)
    packed = conn.execute(
        select(func.json_group_array(func.json_array(*columns)))
        .select_from(deliveries.join(subscribers, subscribers.c.id == deliveries.c.subscriber_id))
        .where(in_range, deliveries.c.claim == claim)
    ).scalar_one()
    return sorted(json.loads(packed))
