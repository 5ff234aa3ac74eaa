"""The storylines an edition shows, kept when it is stored: each with its first and latest
story, the most outlets it was shown with and the edition that last showed it, and each of its
stories marked with it. A storyline shown again (a new development, which ``follows`` a story
shown before) keeps its row."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from newsletter.models import Edition, Story
from newsletter.store.tables import stories, storylines


def keep_storylines(conn: Connection, edition: Edition, edition_id: int) -> None:
    """Record the storylines of ``edition`` (stored as ``edition_id``) in ``conn``'s
    transaction: those of two reports or more, and the new developments of earlier ones.

    A few statements for the whole edition, whatever its size: what its stories already
    belong to read at once, new storylines inserted together, the rest one executemany each
    (a statement or three per storyline cost a 10,000-story send a tenth of a second)."""
    leads = list(_storylines(edition))
    if not leads:
        return
    members = {lead.id: [lead, *lead.reports] for lead in leads}
    asked = {s.id for group in members.values() for s in group}
    asked.update(lead.follows for lead in leads if lead.follows)
    known: dict[str, int] = dict(
        conn.execute(
            select(stories.c.id, stories.c.storyline_id).where(
                stories.c.id.in_(asked), stories.c.storyline_id.is_not(None)
            )
        ).all()
    )
    found: dict[str, int] = {}  # a lead's id → its storyline, when it has one already
    for lead in leads:
        lines = [known[i] for i in (*(s.id for s in members[lead.id]), lead.follows) if i in known]
        if lines:
            found[lead.id] = min(lines)
    fresh = [lead for lead in leads if lead.id not in found]
    _extend(conn, [lead for lead in leads if lead.id in found], members, found, edition_id)
    if fresh:
        rows = [_row(*_ends(members[lead.id]), lead.outlets, edition_id) for lead in fresh]
        added = conn.execute(
            insert(storylines).returning(storylines.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        found.update(zip((lead.id for lead in fresh), added, strict=True))
    marks = [{"story": s.id, "line": found[lead.id]} for lead in leads for s in members[lead.id]]
    conn.execute(
        update(stories)
        .where(stories.c.id == bindparam("story"))
        .values(storyline_id=bindparam("line")),
        marks,
    )


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


def _ends(members: Sequence[Story]) -> tuple[Story, Story]:
    """A storyline's first and latest story."""
    return (
        min(members, key=lambda s: (s.published, s.id)),
        max(members, key=lambda s: (s.published, s.id)),
    )


def _extend(
    conn: Connection,
    leads: Sequence[Story],
    members: Mapping[str, Sequence[Story]],
    found: Mapping[str, int],
    edition_id: int,
) -> None:
    """Storylines shown before, shown again: the latest story, the most outlets, this
    edition."""
    if not leads:
        return
    lines = {found[lead.id] for lead in leads}
    rows = conn.execute(select(storylines).where(storylines.c.id.in_(lines))).all()
    values = {
        row.id: {
            "line": row.id,
            "edition": edition_id,
            "outlets_": row.outlets,
            "latest": row.latest_story_id,
            "at": row.latest_at,
        }
        for row in rows
    }
    for lead in leads:
        kept, latest = values[found[lead.id]], _ends(members[lead.id])[1]
        kept["outlets_"] = max(kept["outlets_"], lead.outlets)
        if latest.published > kept["at"]:
            kept.update(latest=latest.id, at=latest.published)
    conn.execute(
        update(storylines)
        .where(storylines.c.id == bindparam("line"))
        .values(
            last_edition_id=bindparam("edition"),
            outlets=bindparam("outlets_"),
            latest_story_id=bindparam("latest"),
            latest_at=bindparam("at"),
        ),
        list(values.values()),
    )
