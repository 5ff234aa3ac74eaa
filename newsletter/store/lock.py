"""Mixed into ``Store``: what processes on many machines coordinate through: the scheduler's
lock rows, held under the one claim rule (``store/claims.py``) with their heartbeats, the
sign-up rate limit's counts, and the privacy key's fingerprint, which every machine's key must
match."""

from __future__ import annotations

import contextlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import (
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from newsletter.records import LockAnswer, LockHolder
from newsletter.store.base import Repository
from newsletter.store.claims import ClaimRule
from newsletter.store.tables import (
    rate_hits,
    scheduler_lock,
    store_facts,
)


class Locks(Repository):
    """Mixed into ``Store``: the scheduler's locks and the shared rate-limit counts."""

    def take_lock(
        self,
        name: str,
        owner: str,
        *,
        now: datetime,
        rule: ClaimRule,
    ) -> LockAnswer:
        """Take the lock unless its holder still holds it by ``rule``."""
        with self.engine.begin() as conn:
            row = conn.execute(select(scheduler_lock).where(scheduler_lock.c.name == name)).first()
            if row is not None and rule.holds(row.owner, row.heartbeat_at, now=now):
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

    def lock_holders(self) -> list[LockHolder]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(scheduler_lock).order_by(scheduler_lock.c.name)).all()
        return [LockHolder(r.name, r.owner, r.started_at, r.heartbeat_at) for r in rows]

    def release_lock(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(scheduler_lock).where(
                    scheduler_lock.c.name == name, scheduler_lock.c.owner == owner
                )
            )

    def _rate_key(self, key: str) -> str:
        return hmac.digest(self.privacy_key, b"rate:" + key.encode(), "sha256").hex()

    def hits_since(self, key: str, since: datetime) -> int:
        """How many hits ``key`` has had after ``since`` (the client address is kept hashed)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(rate_hits)
                .where(rate_hits.c.key_hash == self._rate_key(key), rate_hits.c.at > since)
            ).scalar_one()
        return int(found)

    def oldest_hit_since(self, key: str, since: datetime) -> datetime | None:
        """The time of ``key``'s oldest hit after ``since`` (None: it has none)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.min(rate_hits.c.at)).where(
                    rate_hits.c.key_hash == self._rate_key(key), rate_hits.c.at > since
                )
            ).scalar_one_or_none()
        return found if isinstance(found, datetime) else None

    def hit(self, key: str, *, now: datetime, forget_before: datetime) -> None:
        """Count one hit for ``key``; its hits older than ``forget_before`` go, and every
        key's hits older than a day (limits of several windows share the table)."""
        hashed = self._rate_key(key)
        with self.engine.begin() as conn:
            conn.execute(
                delete(rate_hits).where(
                    (rate_hits.c.at < now - timedelta(days=1))
                    | ((rate_hits.c.key_hash == hashed) & (rate_hits.c.at < forget_before))
                )
            )
            conn.execute(insert(rate_hits).values(key_hash=hashed, at=now))

    def key_matches(self) -> bool:
        """Whether this process's privacy key is the one the database was first used with
        (recorded as a fingerprint on first use; the key itself is never stored)."""
        mine = hmac.digest(self.privacy_key, b"newsletter privacy key check", "sha256").hex()
        recorded = select(store_facts.c.value).where(store_facts.c.name == "privacy_key")
        with self.engine.begin() as conn:
            if conn.execute(recorded).scalar() is None:
                # the first process records its key; one racing it may have done so first
                with contextlib.suppress(IntegrityError), conn.begin_nested():
                    conn.execute(insert(store_facts).values(name="privacy_key", value=mine))
            return bool(conn.execute(recorded).scalar_one() == mine)
