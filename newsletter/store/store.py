"""``Store``: every query the other stages need, over one SQLAlchemy engine."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from newsletter.errors import NewsletterError
from newsletter.models import FeedSource, Story
from newsletter.store.tables import feeds, stories

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(NewsletterError):
    """The database could not be opened or migrated."""


class Store:
    """Feeds and stories (and, later, editions, subscribers and deliveries) in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
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
        store = cls(engine)
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
                            url=source.url, status="active", consecutive_failures=0, **values
                        )
                    )

    def record_success(self, source: FeedSource, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(feeds)
                .where(feeds.c.url == source.url)
                .values(last_success=now, consecutive_failures=0, status="active")
            )

    def record_failure(self, source: FeedSource, error: str, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(feeds)
                .where(feeds.c.url == source.url)
                .values(
                    last_error=error,
                    last_error_at=now,
                    consecutive_failures=feeds.c.consecutive_failures + 1,
                )
            )

    # stories -----------------------------------------------------------------------------------

    def save_stories(
        self, source: FeedSource, items: Iterable[Story], *, now: datetime
    ) -> tuple[int, int]:
        """Insert new stories and update changed ones; returns (new, updated)."""
        new = changed = 0
        with self.engine.begin() as conn:
            feed_id = conn.execute(select(feeds.c.id).where(feeds.c.url == source.url)).scalar_one()
            batch = {story.id: story for story in items}
            existing = {
                row.id: row
                for row in conn.execute(
                    select(stories.c.id, stories.c.title, stories.c.summary, stories.c.url).where(
                        stories.c.id.in_(list(batch))
                    )
                )
            }
            for story in batch.values():
                row = existing.get(story.id)
                if row is None:
                    conn.execute(
                        insert(stories).values(
                            id=story.id,
                            feed_id=feed_id,
                            url=story.url,
                            title=story.title,
                            summary=story.summary,
                            published=story.published,
                            first_seen=now,
                            updated=now,
                        )
                    )
                    new += 1
                elif (row.title, row.summary, row.url) != (story.title, story.summary, story.url):
                    conn.execute(
                        update(stories)
                        .where(stories.c.id == story.id)
                        .values(
                            title=story.title, summary=story.summary, url=story.url, updated=now
                        )
                    )
                    changed += 1
        return new, changed

    def stories(self, *, since: datetime | None = None) -> list[Story]:
        """Stored stories, newest first; ``since`` keeps those published at or after it."""
        query = (
            select(
                stories.c.id,
                stories.c.title,
                stories.c.url,
                stories.c.summary,
                stories.c.published,
                feeds.c.name,
                feeds.c.url.label("feed_url"),
            )
            .join(feeds, feeds.c.id == stories.c.feed_id)
            .order_by(stories.c.published.desc(), stories.c.id)
        )
        if since is not None:
            query = query.where(stories.c.published >= since)
        with self.engine.connect() as conn:
            return [
                Story(
                    id=row.id,
                    title=row.title,
                    url=row.url,
                    summary=row.summary,
                    source=row.name,
                    published=row.published,
                    feed_url=row.feed_url,
                )
                for row in conn.execute(query)
            ]

    def story_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(stories)).scalar_one())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
