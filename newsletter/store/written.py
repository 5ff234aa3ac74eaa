"""What the optional writer wrote, kept by the hash of what it was written from
(``writer.prompt.Request.key``), so each storyline is written once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from newsletter.store.base import Repository
from newsletter.store.tables import written

_CHUNK = 500  # keys per query: well under any database's limit on bound parameters


class WrittenStore(Repository):
    """The writer's cache: accepted texts by key."""

    def find(self, keys: Iterable[str]) -> dict[str, str]:
        """The texts kept under any of ``keys``, by key."""
        wanted = sorted(set(keys))
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = conn.execute(
                    select(written.c.key, written.c.text).where(written.c.key.in_(chunk))
                )
                found.update((row.key, row.text) for row in rows)
        return found

    def keep(self, key: str, text: str, *, model: str, now: datetime) -> None:
        """Keep ``text`` under ``key`` (a process that kept it first wins: the same key is the
        same request)."""
        row = {"key": key, "text": text, "model": model[:200], "written_at": now}
        # a savepoint, so the transaction outlives the duplicate that another process kept
        with (
            self.engine.begin() as conn,
            contextlib.suppress(IntegrityError),
            conn.begin_nested(),
        ):
            conn.execute(insert(written).values(row))

    def forget_before(self, when: datetime) -> int:
        """Drop what was written before ``when``; how many rows went."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(written).where(written.c.written_at < when))
        return int(result.rowcount or 0)
