"""Mixed into ``Store``: story languages, article-page teasers, labels and the sector model."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.models import SectorFit, Story, sector_fits
from newsletter.records import JudgedStory, Label, PageToFetch, StoredModel, TextToJudge
from newsletter.store.base import Repository
from newsletter.store.tables import feeds, labels, sector_models, stories


class StoryStore(Repository):
    # languages -----------------------------------------------------------------------------

    def stored(self, *, since: datetime | None = None) -> list[Story]:
        """Stored stories, newest first; ``since`` keeps those published at or after it."""
        query = story_query().order_by(stories.c.published.desc(), stories.c.id)
        if since is not None:
            query = query.where(stories.c.published >= since)
        with self.engine.connect() as conn:
            return [story_of(row) for row in conn.execute(query)]

    def unjudged_languages(self, *, since: datetime | None = None) -> list[TextToJudge]:
        query = select(
            stories.c.id, stories.c.title, stories.c.summary, stories.c.feed_language
        ).where(stories.c.language.is_(None))
        if since is not None:
            query = query.where(stories.c.published >= since)
        with self.engine.connect() as conn:
            return [
                TextToJudge(r.id, r.title, r.summary, r.feed_language or "")
                for r in conn.execute(query)
            ]

    def set_languages(self, judged: Mapping[str, str]) -> None:
        """Cache each story's judged language ("" for undetermined)."""
        if judged:
            with self.engine.begin() as conn:
                write_languages(conn, judged)

    # article pages ---------------------------------------------------------------------------

    def pages_to_fetch(
        self, feed_urls: Collection[str], *, since: datetime, limit: int
    ) -> list[PageToFetch]:
        """Recent stories of these feeds whose article page was never fetched, newest first."""
        if not feed_urls:
            return []
        query = (
            select(
                stories.c.id,
                stories.c.url,
                stories.c.title,
                stories.c.summary,
                feeds.c.url.label("feed_url"),
            )
            .join(feeds, feeds.c.id == stories.c.feed_id)
            .where(
                stories.c.page_fetched_at.is_(None),
                stories.c.published >= since,
                feeds.c.url.in_(list(feed_urls)),
            )
            .order_by(stories.c.published.desc(), stories.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = [PageToFetch(r.id, r.url, r.title, r.summary, r.feed_url) for r in rows]
        return out[:limit] if limit >= 0 else out

    def record_page(
        self, story_id: str, *, teaser: str | None, error: str | None, now: datetime
    ) -> None:
        """The one fetch of a story's article page: the lead taken, or why there is none."""
        with self.engine.begin() as conn:
            conn.execute(
                update(stories)
                .where(stories.c.id == story_id)
                .values(
                    page_fetched_at=now,
                    page_teaser=teaser,
                    page_error=error,
                    language=None,  # the new teaser is judged again
                    judged_rules=None,
                    judged=None,
                )
            )

    # labels and the sector model -------------------------------------------------------------

    def add_label(self, label: Label, *, now: datetime) -> None:
        """Store a labelled story; a story labelled again by the same source takes the new label."""
        values = {
            "story_id": label.story_id,
            "title": label.title,
            "summary": label.summary,
            "url": label.url,
            "sector": label.sector,
            "source": label.source,
            "created_at": now,
        }
        with self.engine.begin() as conn:
            if label.story_id is not None:
                done = conn.execute(
                    update(labels)
                    .where(labels.c.story_id == label.story_id, labels.c.source == label.source)
                    .values(values)
                ).rowcount
                if done:
                    return
            with suppress(IntegrityError):  # a concurrent writer stored it first
                conn.execute(insert(labels).values(values))

    def labels(self) -> list[Label]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(labels).order_by(labels.c.id)).all()
        return [Label(r.title, r.summary, r.url, r.sector, r.source, r.story_id) for r in rows]

    def save_model(self, model: bytes, *, examples: int, report: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(sector_models).values(
                    created_at=now, examples=examples, model=model, report=report
                )
            )

    def latest_model(self) -> StoredModel | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sector_models).order_by(sector_models.c.id.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return StoredModel(row.id, row.created_at, row.examples, bytes(row.model), row.report)

    def judged_stories(self, *, since: datetime | None, rules: str) -> list[JudgedStory]:
        """Stored stories (as ``stories`` gives them), each with whether it carries the sectors
        judged under the rules of fingerprint ``rules`` (then filled in) or needs judging."""
        query = (
            story_query()
            .add_columns(stories.c.judged_rules, stories.c.judged)
            .order_by(stories.c.published.desc(), stories.c.id)
        )
        if since is not None:
            query = query.where(stories.c.published >= since)
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                if row.judged_rules == rules and row.judged:
                    fits = sector_fits(*json.loads(row.judged))
                    out.append(JudgedStory(story_of(row, fits), True))
                else:
                    out.append(JudgedStory(story_of(row), False))
        return out

    def save_judged(self, judged: Mapping[str, Sequence[SectorFit]], *, rules: str) -> None:
        """Keep each story's sectors and confidence under the rules' fingerprint (as JSON
        ``[[sector, ...], [confidence, ...]]``)."""
        rows = [
            {
                "story": key,
                "rules": rules,
                "judged": json.dumps([[f.sector for f in fits], [f.confidence for f in fits]]),
            }
            for key, fits in judged.items()
        ]
        self._update_stories(rows, judged_rules=bindparam("rules"), judged=bindparam("judged"))

    def save_clusters(self, clusters: Mapping[str, str]) -> None:
        """Keep the cluster id of each story (story id → cluster id)."""
        rows = [{"story": key, "cluster": value} for key, value in clusters.items()]
        self._update_stories(rows, cluster_id=bindparam("cluster"))

    def _update_stories(self, rows: list[dict[str, Any]], **values: Any) -> None:
        if not rows:
            return
        statement = update(stories).where(stories.c.id == bindparam("story")).values(**values)
        with self.engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                conn.execute(statement, rows[start : start + 5000])

    def story(self, story_id: str) -> Story | None:
        """One stored story by its id, as ``Store.stories`` gives it."""
        with self.engine.connect() as conn:
            row = conn.execute(story_query().where(stories.c.id == story_id)).first()
        return None if row is None else story_of(row)


def story_query() -> Select[Any]:
    """The columns a ``Story`` is read from, with its feed's name and URL."""
    return select(
        stories.c.id,
        stories.c.title,
        stories.c.url,
        stories.c.summary,
        stories.c.published,
        stories.c.language,
        stories.c.page_teaser,
        stories.c.cluster_id,
        feeds.c.name,
        feeds.c.url.label("feed_url"),
    ).join(feeds, feeds.c.id == stories.c.feed_id)


def story_of(row: Any, fits: tuple[SectorFit, ...] = ()) -> Story:
    """A story from a ``story_query`` row: the article page's lead replaces a thin teaser."""
    return Story(
        id=row.id,
        title=row.title,
        url=row.url,
        summary=row.page_teaser or row.summary,
        source=row.name,
        published=row.published,
        feed_url=row.feed_url,
        fits=fits,
        language=row.language or "",
        cluster=row.cluster_id or "",
    )


def write_languages(conn: Connection, judged: Mapping[str, str]) -> None:
    """Each story's judged language, in the caller's transaction."""
    statement = (
        update(stories).where(stories.c.id == bindparam("sid")).values(language=bindparam("lang"))
    )
    conn.execute(statement, [{"sid": k, "lang": v} for k, v in judged.items()])
