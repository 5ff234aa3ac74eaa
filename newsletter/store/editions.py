"""Editions: each day's frozen snapshot and status, what was sent before, the published
archive. A date has at most one edition of each kind: the daily one (what the archive, the
stats and "sent before" know) and the weekly one of weekly readers (kept apart: its stories
were sent to daily readers already, and stay free for the next daily editions)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.models import DeliveryStatus, Edition, EditionKind, EditionStatus, Seen
from newsletter.records import EditionRef, EditionSummary, StoredEdition, StoredStoryline
from newsletter.store.base import Repository
from newsletter.store.snapshot import edition_from_json, edition_to_json
from newsletter.store.storylines import keep_storylines
from newsletter.store.tables import deliveries, edition_stories, editions, stories, storylines
from newsletter.text import headline_key


class EditionStore(Repository):
    """Editions by date and id, their status and snapshot, and the archive's view of them."""

    def save_edition(self, edition: Edition, *, status: EditionStatus, now: datetime) -> bool:
        """Store (or replace) the edition of its date with its stories; False if it is frozen.

        A frozen, sending or sent edition is never replaced (it is what readers get), so two
        senders that build at once both end up sending the first one stored.
        """
        try:
            return self._save_edition(edition, status=status, now=now)
        except IntegrityError:  # another process stored this date's edition first
            return False

    def _save_edition(self, edition: Edition, *, status: EditionStatus, now: datetime) -> bool:
        carried = {
            s.id: {"story_id": s.id, "url": s.url, "headline": headline_key(s.title)}
            for section in edition.sections
            for lead in section.stories
            for s in (lead, *lead.reports)  # a storyline's other reports went out with it
        }
        with self.engine.begin() as conn:
            row = conn.execute(
                select(editions.c.id, editions.c.status).where(
                    editions.c.edition_date == edition.edition_date,
                    editions.c.kind == edition.kind,
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
                    insert(editions).values(
                        edition_date=edition.edition_date, kind=edition.kind, **values
                    )
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
            if edition.kind == EditionKind.DAILY:  # a weekly one repeats what went out
                keep_storylines(conn, edition, edition_id)
        return True

    def storyline_of(self, story_id: str) -> StoredStoryline | None:
        """The storyline an edition showed the story in, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(storylines)
                .join(stories, stories.c.storyline_id == storylines.c.id)
                .where(stories.c.id == story_id)
            ).first()
        if row is None:
            return None
        return StoredStoryline(
            row.id,
            row.first_story_id,
            row.first_at,
            row.latest_story_id,
            row.latest_at,
            row.outlets,
            row.last_edition_id,
        )

    def edition(
        self, edition_date: date, kind: EditionKind = EditionKind.DAILY
    ) -> StoredEdition | None:
        """The stored edition of a date, with its id and status, if there is one."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    editions.c.id, editions.c.snapshot, editions.c.status, editions.c.built_at
                ).where(editions.c.edition_date == edition_date, editions.c.kind == kind)
            ).one_or_none()
        if row is None:
            return None
        snapshot = edition_from_json(row.snapshot)
        return StoredEdition(row.id, snapshot, EditionStatus(row.status), row.built_at)

    def published_editions(self, *, limit: int, offset: int = 0) -> list[StoredEdition]:
        """Editions sent (or being sent), newest first: what the public archive shows."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(editions.c.id, editions.c.snapshot, editions.c.status)
                .where(editions.c.status.in_(SENT), DAILY)
                .order_by(editions.c.edition_date.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [
            StoredEdition(r.id, edition_from_json(r.snapshot), EditionStatus(r.status))
            for r in rows
        ]

    def published_count(self) -> tuple[int, int]:
        """(how many editions are published, the newest one's id): what the archive's cached
        pages depend on."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(func.count(), func.max(editions.c.id)).where(
                    editions.c.status.in_(SENT), DAILY
                )
            ).one()
        return int(row[0]), int(row[1] or 0)

    def latest_published_date(self) -> date | None:
        """The date of the newest edition sent (or being sent), without its snapshot: what the
        readers' pages link to as the latest edition."""
        with self.engine.connect() as conn:
            day: date | None = conn.execute(
                select(func.max(editions.c.edition_date)).where(editions.c.status.in_(SENT), DAILY)
            ).scalar()
        return day

    def sent_before(self, edition_date: date, *, since: date | None = None) -> Seen:
        """The stories of editions sent (or being sent) before ``edition_date``.

        ``since`` leaves out older editions, whose stories can no longer be picked anyway, so
        the headline comparisons do not grow with the archive.
        """
        sent = and_(editions.c.status.in_(SENT), editions.c.edition_date < edition_date, DAILY)
        if since is not None:
            sent = and_(sent, editions.c.edition_date >= since)
        query = (
            select(edition_stories.c.story_id, edition_stories.c.url, edition_stories.c.headline)
            .join(editions, editions.c.id == edition_stories.c.edition_id)
            .where(sent)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            snapshots = conn.execute(select(editions.c.snapshot).where(sent)).scalars().all()
        ids = frozenset(r.story_id for r in rows)
        stories = {
            s.id: s
            for text in snapshots
            for section in edition_from_json(text).sections
            for lead in section.stories
            for s in (lead, *lead.reports)
            if s.id in ids
        }
        return Seen(
            ids=ids,
            urls=frozenset(r.url for r in rows),
            headlines=tuple(sorted({r.headline for r in rows})),
            stories=tuple(stories[key] for key in sorted(stories)),
        )

    # editions ----------------------------------------------------------------------------------

    def edition_ref(
        self, edition_date: date, kind: EditionKind = EditionKind.DAILY
    ) -> EditionRef | None:
        """The id and status of the stored edition of a date."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(editions.c.id, editions.c.status).where(
                    editions.c.edition_date == edition_date, editions.c.kind == kind
                )
            ).first()
        return None if row is None else EditionRef(row.id, edition_date, EditionStatus(row.status))

    def set_edition_status(self, edition_id: int, status: EditionStatus, *, now: datetime) -> None:
        values: dict[str, Any] = {"status": status}
        if status == EditionStatus.SENT:
            values["sent_at"] = now
        with self.engine.begin() as conn:
            conn.execute(update(editions).where(editions.c.id == edition_id).values(values))

    def editions_in_status(
        self, status: EditionStatus, kind: EditionKind = EditionKind.DAILY
    ) -> list[date]:
        """The dates of the editions in a status (``sending``: a send that did not finish)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(editions.c.edition_date)
                .where(editions.c.status == status, editions.c.kind == kind)
                .order_by(editions.c.edition_date)
            ).scalars()
            return list(rows)

    def recent_editions(self, limit: int = 7) -> list[EditionSummary]:
        """The latest editions, daily and weekly, with their delivery counts by status."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(editions.c.id, editions.c.edition_date, editions.c.status, editions.c.kind)
                .order_by(editions.c.edition_date.desc(), editions.c.kind)
                .limit(limit)
            ).all()
            out = []
            for row in rows:
                counts = {
                    DeliveryStatus(status): int(n)
                    for status, n in conn.execute(
                        select(deliveries.c.status, func.count())
                        .where(deliveries.c.edition_id == row.id)
                        .group_by(deliveries.c.status)
                    )
                }
                status = EditionStatus(row.status)
                out.append(EditionSummary(row.edition_date, status, counts, EditionKind(row.kind)))
        return out


SENT = (EditionStatus.SENDING, EditionStatus.SENT)
DAILY = editions.c.kind == EditionKind.DAILY  # what the archive, the stats and "sent" know
FROZEN = EditionStatus.fixed()
