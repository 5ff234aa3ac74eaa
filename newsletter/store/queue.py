"""Mixed into ``Store``: the queue of transactional mail (``outgoing``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from newsletter.models import MailStatus, Outgoing
from newsletter.store.tables import outgoing


def _outgoing(row: Any) -> Outgoing:
    return Outgoing(
        id=row.id,
        subscriber_id=row.subscriber_id,
        kind=row.kind,
        name=row.name,
        sectors=tuple(json.loads(row.sectors)),
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
    )


class QueueQueries:
    engine: Engine

    def queue_mail(
        self,
        subscriber_id: int,
        *,
        kind: str,
        name: str,
        sectors: Sequence[str],
        now: datetime,
        held: bool = False,
    ) -> None:
        """Queue a transactional email, or only record the choice it carries (``held``)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(outgoing).values(
                    subscriber_id=subscriber_id,
                    kind=kind,
                    name=name,
                    sectors=json.dumps(list(sectors)),
                    status=MailStatus.HELD if held else MailStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    def latest_mail(self, subscriber_id: int, *, kind: str) -> Outgoing | None:
        """The newest queued email of a kind for a reader, whatever its status."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(outgoing)
                .where(outgoing.c.subscriber_id == subscriber_id, outgoing.c.kind == kind)
                .order_by(outgoing.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _outgoing(row)

    def last_mail_sent_at(self, subscriber_id: int, *, kind: str) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(outgoing.c.created_at)
                .where(
                    outgoing.c.subscriber_id == subscriber_id,
                    outgoing.c.kind == kind,
                    outgoing.c.status.in_([MailStatus.PENDING, MailStatus.SENT]),
                )
                .order_by(outgoing.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    def due_mail(self, *, now: datetime, limit: int) -> list[Outgoing]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outgoing)
                .where(outgoing.c.status == MailStatus.PENDING, outgoing.c.next_attempt_at <= now)
                .order_by(outgoing.c.next_attempt_at, outgoing.c.id)
                .limit(limit)
            ).all()
        return [_outgoing(r) for r in rows]

    def claim_mail(self, mail_id: int, *, now: datetime, until: datetime) -> bool:
        """Take a due email for one sender (until ``until``); False when another took it."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(outgoing)
                .where(
                    outgoing.c.id == mail_id,
                    outgoing.c.status == MailStatus.PENDING,
                    outgoing.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
            ).rowcount
        return bool(taken)

    def mail_sent(self, mail_id: int, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(outgoing)
                .where(outgoing.c.id == mail_id)
                .values(status=MailStatus.SENT, sent_at=now, attempts=outgoing.c.attempts + 1)
            )

    def mail_failed(
        self, mail_id: int, *, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        """An attempt failed: try again at ``retry_at``, or give up (None)."""
        values: dict[str, Any] = {"attempts": outgoing.c.attempts + 1, "last_error": error}
        if retry_at is None:
            values["status"] = MailStatus.FAILED
        else:
            values["next_attempt_at"] = retry_at
        with self.engine.begin() as conn:
            conn.execute(update(outgoing).where(outgoing.c.id == mail_id).values(values))
