"""Mixed into ``Store``: feeds (their validators, health, moves) and the stories they bring."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from newsletter.models import FeedSource, FeedStatus, Story
from newsletter.records import FeedHealth, FeedState, StoredCounts
from newsletter.store.base import Repository
from newsletter.store.stories import write_languages
from newsletter.store.tables import feeds, stories


class FeedStore(Repository):
    """Mixed into ``Store``: feeds and their stories."""

    def sync_feeds(self, sources: Sequence[FeedSource]) -> None:
        """Add configured feeds the store does not know yet; refresh names and hints."""
        with self.engine.begin() as conn:
            known = {row.url: row.id for row in conn.execute(select(feeds.c.url, feeds.c.id))}
            for source in sources:
                values: dict[str, Any] = {"name": source.name, "sector_hint": source.sector}
                if source.url in known:
                    conn.execute(
                        update(feeds).where(feeds.c.id == known[source.url]).values(values)
                    )
                else:
                    conn.execute(
                        insert(feeds).values(
                            url=source.url,
                            status=FeedStatus.ACTIVE,
                            consecutive_failures=0,
                            **values,
                        )
                    )

    def feed_states(self) -> dict[str, FeedState]:
        """What each known feed's next fetch needs: current URL, validators, status."""
        columns = ("url", "current_url", "etag", "last_modified", "status", "retry_after")
        query = select(*(feeds.c[name] for name in columns))
        with self.engine.connect() as conn:
            return {
                row.url: FeedState(
                    row.current_url,
                    row.etag,
                    row.last_modified,
                    FeedStatus(row.status),
                    row.retry_after,
                )
                for row in conn.execute(query)
            }

    def record_fetched(
        self,
        source: FeedSource,
        items: Iterable[Story],
        *,
        now: datetime,
        status: int | None,
        etag: str | None,
        last_modified: str | None,
        moved_to: str | None = None,
        redate: bool = False,
        languages: Sequence[str] = (),
    ) -> StoredCounts:
        """Store a feed's stories and, in the same transaction, its validators and good health.
        ``redate`` (a sample feed) gives stories stored before their new publication times;
        ``languages`` (one per story, as the parse judged them) are kept with new or changed
        stories.

        Returns (new, updated). The validators are saved only with the stories they describe, so
        a crash between the two can never make a later 304 hide stories that were not stored.
        """
        with self.engine.begin() as conn:
            feed_id = conn.execute(select(feeds.c.id).where(feeds.c.url == source.url)).scalar_one()
            items = list(items)
            counts = self._save_stories(conn, feed_id, items, now)
            if redate:
                self._redate(conn, items)
            if (counts[0] or counts[1]) and len(languages) == len(items):
                judged = zip((s.id for s in items), languages, strict=True)
                write_languages(conn, dict(judged))
            values: dict[str, Any] = {
                "etag": etag,
                "last_modified": last_modified,
                "last_status": status,
                **_healthy(now),
                **_moved(source, moved_to, now),
            }
            conn.execute(update(feeds).where(feeds.c.id == feed_id).values(values))
        return StoredCounts(*counts)

    def record_not_modified(
        self, source: FeedSource, *, now: datetime, moved_to: str | None = None
    ) -> None:
        """A 304: nothing new, and the feed is healthy."""
        with self.engine.begin() as conn:
            conn.execute(
                update(feeds)
                .where(feeds.c.url == source.url)
                .values(last_status=304, **_healthy(now), **_moved(source, moved_to, now))
            )

    def record_failure(
        self,
        source: FeedSource,
        error: str,
        *,
        now: datetime,
        status: int | None = None,
        gone: bool = False,
        retry_after: datetime | None = None,
    ) -> None:
        """A failed fetch or parse; a 410 marks the feed gone, so it is no longer fetched; a
        ``retry_after`` (a 429's or 503's) is the time before which it is not fetched."""
        values: dict[str, Any] = {
            "retry_after": retry_after,
            "last_error": error,
            "last_error_at": now,
            "last_fetched": now,
            "last_status": status,
            "consecutive_failures": feeds.c.consecutive_failures + 1,
            "failing_since": func.coalesce(feeds.c.failing_since, now),
        }
        if gone:
            values["status"] = FeedStatus.GONE
        with self.engine.begin() as conn:
            conn.execute(update(feeds).where(feeds.c.url == source.url).values(values))

    def reactivate(self, source: FeedSource) -> None:
        """Fetch a gone feed again (``collect --retry-gone``)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(feeds).where(feeds.c.url == source.url).values(status=FeedStatus.ACTIVE)
            )

    def feed_health(self, *, now: datetime) -> list[FeedHealth]:
        """Every known feed's health, with its stories published in the last day."""
        recent = (
            select(stories.c.feed_id, func.count().label("n"))
            .where(stories.c.published >= now - timedelta(days=1))
            .group_by(stories.c.feed_id)
            .subquery()
        )
        query = (
            select(feeds, func.coalesce(recent.c.n, 0).label("last_day"))
            .outerjoin(recent, recent.c.feed_id == feeds.c.id)
            .order_by(feeds.c.name)
        )
        with self.engine.connect() as conn:
            return [
                FeedHealth(
                    url=row.url,
                    name=row.name,
                    status=FeedStatus(row.status),
                    current_url=row.current_url,
                    last_success=row.last_success,
                    last_error=row.last_error,
                    last_error_at=row.last_error_at,
                    consecutive_failures=row.consecutive_failures,
                    failing_since=row.failing_since,
                    last_status=row.last_status,
                    last_fetched=row.last_fetched,
                    moved_at=row.moved_at,
                    stories_last_day=int(row.last_day),
                )
                for row in conn.execute(query)
            ]

    def last_collected(self) -> datetime | None:
        """When a feed was last fetched (any feed): what a page built from the stories keeps
        until the next collection."""
        with self.engine.connect() as conn:
            found: datetime | None = conn.execute(select(func.max(feeds.c.last_fetched))).scalar()
        return found

    def prune(self, *, before: datetime) -> int:
        """Delete stories published and first seen before ``before``; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(stories).where(stories.c.published < before, stories.c.first_seen < before)
            )
        return int(result.rowcount or 0)

    @staticmethod
    def _redate(conn: Connection, items: Sequence[Story]) -> None:
        statement = (
            update(stories)
            .where(stories.c.id == bindparam("row_id"))
            .values(published=bindparam("when", type_=stories.c.published.type))
        )
        rows = [{"row_id": story.id, "when": story.published} for story in items]
        if rows:
            conn.execute(statement, rows)

    @staticmethod
    def _save_stories(
        conn: Connection, feed_id: int, items: Iterable[Story], now: datetime
    ) -> tuple[int, int]:
        batch = {story.id: story for story in items}
        if not batch:
            return 0, 0
        existing = {
            row.id: (row.title, row.summary, row.url)
            for row in conn.execute(
                select(stories.c.id, stories.c.title, stories.c.summary, stories.c.url).where(
                    stories.c.id.in_(list(batch))
                )
            )
        }
        fresh = [
            {
                "id": story.id,
                "feed_id": feed_id,
                "url": story.url,
                "title": story.title,
                "summary": story.summary,
                "published": story.published,
                "first_seen": now,
                "updated": now,
                "feed_language": story.language or None,
            }
            for story in batch.values()
            if story.id not in existing
        ]
        if fresh:
            conn.execute(insert(stories), fresh)
        changed = 0
        for story in batch.values():
            old = existing.get(story.id)
            if old is not None and old != (story.title, story.summary, story.url):
                conn.execute(
                    update(stories)
                    .where(stories.c.id == story.id)
                    .values(
                        title=story.title,
                        summary=story.summary,
                        url=story.url,
                        updated=now,
                        language=None,  # judged again from the new text
                        judged_rules=None,  # and its sectors
                        judged=None,
                        cluster_id=None,  # and compared with the others again
                    )
                )
                changed += 1
        return len(fresh), changed


def _healthy(now: datetime) -> dict[str, Any]:
    return {
        "retry_after": None,
        "last_success": now,
        "last_fetched": now,
        "consecutive_failures": 0,
        "failing_since": None,
        "status": FeedStatus.ACTIVE,
    }


def _moved(source: FeedSource, moved_to: str | None, now: datetime) -> dict[str, Any]:
    if moved_to is None:
        return {}
    return {"current_url": None if moved_to == source.url else moved_to, "moved_at": now}
