"""The storylines an edition shows, kept when it is stored: each with its first and latest
story, the most outlets it was shown with and the edition that last showed it, and each of its
stories marked with it. A storyline shown again (a new development, which ``follows`` a story
shown before) keeps its row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, insert, select, update

from newsletter.models import Edition, Story
from newsletter.store.tables import stories, storylines


def keep_storylines(conn: Connection, edition: Edition, edition_id: int) -> None:
    """Record the storylines of ``edition`` (stored as ``edition_id``) in ``conn``'s
    transaction: those of two reports or more, and the new developments of earlier ones."""
    for lead in _storylines(edition):
        members = [lead, *lead.reports]
        ids = [s.id for s in members]
        known = conn.execute(
            select(stories.c.storyline_id).where(
                stories.c.id.in_([*ids, lead.follows]), stories.c.storyline_id.is_not(None)
            )
        ).scalars()
        found = min(known, default=None)
        first = min(members, key=lambda s: (s.published, s.id))
        latest = max(members, key=lambda s: (s.published, s.id))
        if found is None:
            values = _row(first, latest, lead.outlets, edition_id)
            inserted = conn.execute(insert(storylines).values(values)).inserted_primary_key
            assert inserted is not None
            found = inserted[0]
        else:
            _extend(conn, found, latest, lead.outlets, edition_id)
        conn.execute(update(stories).where(stories.c.id.in_(ids)).values(storyline_id=found))


def _storylines(edition: Edition) -> Iterator[Story]:
    seen: set[str] = set()
    for section in edition.sections:
        for lead in section.stories:
            if lead.id not in seen and (lead.reports or lead.follows):
                seen.add(lead.id)
                yield lead


def _row(first: Story, latest: Story, outlets: int, edition_id: int) -> dict[str, Any]:
    return {
        "first_story_id": first.id,
        "first_at": first.published,
        "latest_story_id": latest.id,
        "latest_at": latest.published,
        "outlets": outlets,
        "last_edition_id": edition_id,
    }


def _extend(conn: Connection, line: int, latest: Story, outlets: int, edition_id: int) -> None:
    row = conn.execute(select(storylines).where(storylines.c.id == line)).one()
    values: dict[str, Any] = {"last_edition_id": edition_id, "outlets": max(row.outlets, outlets)}
    if latest.published > row.latest_at:
        values.update(latest_story_id=latest.id, latest_at=latest.published)
    conn.execute(update(storylines).where(storylines.c.id == line).values(values))
