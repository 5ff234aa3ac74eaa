"""Stories → the day's ``Edition``: recent, on-topic, duplicates merged, ranked. Pure.

``build_edition`` clusters the same story carried by several feeds (same canonical link, or the same
headline once case and punctuation are ignored) into one, which lists the other outlets and ranks
higher for being carried by them. ``layout`` gives what one reader sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta

from newsletter.classify import tokens
from newsletter.models import Edition, Section, Sector, Story


def build_edition(
    stories: Iterable[Story],
    sectors: Sequence[Sector],
    *,
    publication: str,
    edition_date: date,
    now: datetime,
    per_sector: int = 5,
    max_age: timedelta = timedelta(hours=36),
    feed_weights: Mapping[str, float] | None = None,
) -> Edition:
    """Cluster duplicates, rank, and gather each sector's candidates for the day."""
    weights = feed_weights or {}
    fresh = [s for s in stories if s.sectors and now - max_age <= s.published]
    merged = [_merge(group, weights) for group in cluster(fresh)]
    merged.sort(
        key=lambda s: (
            -(1 + len(s.also_in)),
            -weights.get(s.feed_url, 1.0),
            -s.published.timestamp(),
            s.id,
        )
    )
    sections = []
    for sector in sectors:
        picks = tuple(s for s in merged if sector.slug in s.sectors)
        if picks:
            sections.append(Section(sector, picks))
    return Edition(publication, edition_date, tuple(sections), per_sector)


def _rank_key(story: Story, weights: Mapping[str, float]) -> tuple[float, float, float, str]:
    """More outlets first, then the more trusted feed, then the fresher story."""
    outlets = 1 + len(story.also_in)
    return (-outlets, -weights.get(story.feed_url, 1.0), -story.published.timestamp(), story.id)


def cluster(stories: Sequence[Story]) -> list[list[Story]]:
    """Groups of stories that are the same news: same canonical link or same headline."""
    parent = list(range(len(stories)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_by_key: dict[tuple[str, str], int] = {}
    for i, story in enumerate(stories):
        for key in (("url", story.url), ("title", " ".join(tokens(story.title)))):
            if not key[1]:
                continue
            j = first_by_key.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)
    groups: dict[int, list[Story]] = {}
    for i, story in enumerate(stories):
        groups.setdefault(find(i), []).append(story)
    return list(groups.values())


def _merge(group: list[Story], weights: Mapping[str, float]) -> Story:
    """The story to keep (most trusted feed, earliest, fullest teaser), naming the others."""
    best = min(
        group,
        key=lambda s: (-weights.get(s.feed_url, 1.0), s.published, -len(s.summary), s.source, s.id),
    )
    others = sorted({s.source for s in group} - {best.source})
    return dataclasses.replace(best, also_in=tuple(others))


def layout(edition: Edition, chosen: Sequence[str] = ()) -> tuple[Section, ...]:
    """What one reader sees: each story once, in the reader's best-fitting chosen sector.

    ``chosen`` empty means every sector. Each section keeps ``per_sector`` stories; the rest of its
    stories become its ``more`` headlines. Sections left with nothing are dropped.
    """
    wanted = set(chosen) if chosen else {s.sector.slug for s in edition.sections}
    placed: set[str] = set()
    out: list[Section] = []
    for section in edition.sections:
        slug = section.sector.slug
        if slug not in wanted:
            continue
        mine = []
        for story in section.stories:
            home = next((s for s in story.sectors if s in wanted), None)
            if home == slug and story.id not in placed:
                placed.add(story.id)
                mine.append(story)
        if mine:
            keep = edition.per_sector
            out.append(Section(section.sector, tuple(mine[:keep]), tuple(mine[keep:])))
    return tuple(out)
