"""Mixed into ``Store``: the scheduler's lock row, with its heartbeat."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import (
    Engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from newsletter.records import LockAnswer
from newsletter.store.tables import (
    scheduler_lock,
)


class LockQueries:
    """Mixed into ``Store``: the scheduler's lock."""

    engine: Engine

    def take_lock(
        self,
        name: str,
        owner: str,
        *,
        now: datetime,
        stale_before: datetime,
        alive: Callable[[str], bool],
    ) -> LockAnswer:
        """Take the lock unless a live holder has it."""
        with self.engine.begin() as conn:
            row = conn.execute(select(scheduler_lock).where(scheduler_lock.c.name == name)).first()
            if row is not None and row.heartbeat_at >= stale_before and alive(row.owner):
                return LockAnswer(False, row.owner, row.started_at)
            if row is not None:
                conn.execute(delete(scheduler_lock).where(scheduler_lock.c.name == name))
            try:
                conn.execute(
                    insert(scheduler_lock).values(
                        name=name, owner=owner, started_at=now, heartbeat_at=now
                    )
                )
            except IntegrityError:  # someone else won the race
                return LockAnswer(False, "another process", None)
        return LockAnswer(True, owner, now)

    def beat(self, name: str, owner: str, *, now: datetime) -> bool:
        """Keep the lock fresh; False when it is no longer this owner's (taken over)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(scheduler_lock)
                .where(scheduler_lock.c.name == name, scheduler_lock.c.owner == owner)
                .values(heartbeat_at=now)
            )
        return bool(result.rowcount)

    def release_lock(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(scheduler_lock).where(
                    scheduler_lock.c.name == name, scheduler_lock.c.owner == owner
                )
            )
