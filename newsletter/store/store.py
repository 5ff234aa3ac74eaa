"""``Store``: every query the other stages need, over one SQLAlchemy engine."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from newsletter.errors import NewsletterError
from newsletter.models import Edition, EditionStatus, FeedSource, FeedState, FeedStatus, Seen, Story
from newsletter.store.consent import ConsentQueries, LockQueries
from newsletter.store.curation import CurationQueries, story_of, story_query
from newsletter.store.ledger import LedgerQueries
from newsletter.store.queue import QueueQueries
from newsletter.store.snapshot import edition_from_json, edition_to_json
from newsletter.store.tables import edition_stories, editions, feeds, stories
from newsletter.text import headline_key

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(NewsletterError):
    """The database could not be opened or migrated."""


class Store(LedgerQueries, ConsentQueries, LockQueries, CurationQueries, QueueQueries):
    """Feeds, stories, editions, subscribers and the send ledger, in one database."""

    def __init__(self, engine: Engine, *, privacy_key: bytes | None = None) -> None:
        self.engine = engine
        # keys the hashes of suppressed addresses; the commands pass the configured secret
        # (Config.privacy_key), code that opens a store by URL alone gets one derived from it
        self.privacy_key = (
            privacy_key or hashlib.sha256(b"newsletter-store:" + str(engine.url).encode()).digest()
        )

    @classmethod
    def open(cls, url: str, *, privacy_key: bytes | None = None) -> Store:
        """Connect (creating a SQLite file and its folder if needed) and migrate the schema."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = create_engine(url)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(
                f"cannot use database {parsed.render_as_string(hide_password=True)}: {exc}",
                hint="Check the `database` key in config.yaml; it takes any SQLAlchemy URL.",
            ) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine, privacy_key=privacy_key)
        store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when it is already there)."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        heads = set(ScriptDirectory.from_config(config).get_heads())
        try:
            with self.engine.begin() as conn:
                if set(MigrationContext.configure(conn).get_current_heads()) == heads:
                    return
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open or migrate the database: {exc.__class__.__name__}: {exc.args[0]}",
                hint="Check the `database` key in config.yaml, and that the file or server is "
                "reachable.",
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # feeds -------------------------------------------------------------------------------------

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
        query = select(
            feeds.c.url, feeds.c.current_url, feeds.c.etag, feeds.c.last_modified, feeds.c.status
        )
        with self.engine.connect() as conn:
            return {
                row.url: FeedState(row.current_url, row.etag, row.last_modified, row.status)
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
    ) -> tuple[int, int]:
        """Store a feed's stories and, in the same transaction, its validators and good health.

        Returns (new, updated). The validators are saved only with the stories they describe, so
        a crash between the two can never make a later 304 hide stories that were not stored.
        """
        with self.engine.begin() as conn:
            feed_id = conn.execute(select(feeds.c.id).where(feeds.c.url == source.url)).scalar_one()
            counts = self._save_stories(conn, feed_id, items, now)
            values: dict[str, Any] = {
                "etag": etag,
                "last_modified": last_modified,
                "last_status": status,
                **_healthy(now),
                **_moved(source, moved_to, now),
            }
            conn.execute(update(feeds).where(feeds.c.id == feed_id).values(values))
        return counts

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
    ) -> None:
        """A failed fetch or parse; a 410 marks the feed gone, so it is no longer fetched."""
        values: dict[str, Any] = {
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
                    status=row.status,
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

    def prune(self, *, before: datetime) -> int:
        """Delete stories published and first seen before ``before``; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(stories).where(stories.c.published < before, stories.c.first_seen < before)
            )
        return int(result.rowcount or 0)

    # stories -----------------------------------------------------------------------------------

    def save_stories(
        self, source: FeedSource, items: Iterable[Story], *, now: datetime
    ) -> tuple[int, int]:
        """Insert new stories and update changed ones; returns (new, updated)."""
        with self.engine.begin() as conn:
            feed_id = conn.execute(select(feeds.c.id).where(feeds.c.url == source.url)).scalar_one()
            return self._save_stories(conn, feed_id, items, now)

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

    def stories(self, *, since: datetime | None = None) -> list[Story]:
        """Stored stories, newest first; ``since`` keeps those published at or after it."""
        query = story_query().order_by(stories.c.published.desc(), stories.c.id)
        if since is not None:
            query = query.where(stories.c.published >= since)
        with self.engine.connect() as conn:
            return [story_of(row) for row in conn.execute(query)]

    # editions ----------------------------------------------------------------------------------

    def save_edition(self, edition: Edition, *, status: str, now: datetime) -> bool:
        """Store (or replace) the edition of its date with its stories; False if it is frozen.

        A frozen, sending or sent edition is never replaced (it is what readers get), so two
        senders that build at once both end up sending the first one stored.
        """
        try:
            return self._save_edition(edition, status=status, now=now)
        except IntegrityError:  # another process stored this date's edition first
            return False

    def _save_edition(self, edition: Edition, *, status: str, now: datetime) -> bool:
        carried = {
            s.id: {"story_id": s.id, "url": s.url, "headline": headline_key(s.title)}
            for section in edition.sections
            for s in section.stories
        }
        with self.engine.begin() as conn:
            row = conn.execute(
                select(editions.c.id, editions.c.status).where(
                    editions.c.edition_date == edition.edition_date
                )
            ).one_or_none()
            values: dict[str, Any] = {
                "status": status,
                "built_at": now,
                "snapshot": edition_to_json(edition),
                "sent_at": now if status == EditionStatus.SENT else None,
            }
            if row is None:
                inserted = conn.execute(
                    insert(editions).values(edition_date=edition.edition_date, **values)
                )
                edition_id = inserted.inserted_primary_key[0]  # type: ignore[index]
            else:
                if row.status in FROZEN:
                    return False
                edition_id = row.id
                conn.execute(update(editions).where(editions.c.id == row.id).values(values))
                conn.execute(delete(edition_stories).where(edition_stories.c.edition_id == row.id))
            if carried:
                conn.execute(
                    insert(edition_stories),
                    [{"edition_id": edition_id, **item} for item in carried.values()],
                )
        return True

    def edition(self, edition_date: date) -> tuple[Edition, str] | None:
        """The stored edition of a date and its status, if there is one."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(editions.c.snapshot, editions.c.status).where(
                    editions.c.edition_date == edition_date
                )
            ).one_or_none()
        return None if row is None else (edition_from_json(row.snapshot), row.status)

    def sent_before(self, edition_date: date, *, since: date | None = None) -> Seen:
        """The stories of editions sent (or being sent) before ``edition_date``.

        ``since`` leaves out older editions, whose stories can no longer be picked anyway, so
        the headline comparisons do not grow with the archive.
        """
        query = (
            select(edition_stories.c.story_id, edition_stories.c.url, edition_stories.c.headline)
            .join(editions, editions.c.id == edition_stories.c.edition_id)
            .where(editions.c.status.in_(SENT), editions.c.edition_date < edition_date)
        )
        if since is not None:
            query = query.where(editions.c.edition_date >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return Seen(
            ids=frozenset(r.story_id for r in rows),
            urls=frozenset(r.url for r in rows),
            headlines=tuple(sorted({r.headline for r in rows})),
        )

    def story_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(stories)).scalar_one())


SENT = (EditionStatus.SENDING, EditionStatus.SENT)
FROZEN = EditionStatus.fixed()


def _healthy(now: datetime) -> dict[str, Any]:
    return {
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


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """One feed as ``newsletter status`` shows it."""

    url: str
    name: str
    status: str
    current_url: str | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_status: int | None
    last_fetched: datetime | None
    moved_at: datetime | None
    stories_last_day: int


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; commits skip the fsync
    cursor.execute("PRAGMA busy_timeout=5000")
    # 32 MB of page cache at most per connection (the default is 2 MB): the indexes of a million
    # readers (address, token) stay in memory, instead of each insert or lookup parsing pages
    # again; memory is only taken as pages are read
    cursor.execute("PRAGMA cache_size=-32000")
    # the log is folded back into the database every 40 MB rather than every 4 MB: a million-row
    # import or send commits often, and each fold rewrites the pages it touched
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()
