"""Stories → the day's ``Edition``: recent, on-topic, new, duplicates merged, ranked. Pure.

``build_edition`` clusters the same story carried by several feeds (the same canonical link, or
near-identical headlines by rapidfuzz) into one, which names the other outlets and ranks higher
for being carried by them. Stories already sent in an earlier edition are left out, and so are
their duplicates. Within a sector, stories rank by freshness, outlets and the feed's weight; the
editor's pins come first and drops never appear. ``layout`` gives what one reader sees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta

from rapidfuzz import fuzz, process

from newsletter.classify import headline_key
from newsletter.models import Edition, Overrides, Section, Sector, Seen, Story

SAME_HEADLINE = 90  # rapidfuzz token_sort_ratio at or above which two headlines are one story
_MIN_FUZZY_WORDS = 4  # shorter headlines must match exactly


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
    feed_names: Mapping[str, str] | None = None,
    seen: Seen | None = None,
    overrides: Overrides | None = None,
    half_life: timedelta = timedelta(hours=12),
) -> Edition:
    """Cluster duplicates, drop what was sent or dropped, rank, and gather each sector's stories."""
    weights = feed_weights or {}
    seen = seen or Seen()
    overrides = overrides or Overrides()
    dropped_feeds = _feeds_named(overrides.drop_feeds, feed_names or {})
    drops = set(overrides.drop)
    pins = {key: rank for rank, key in enumerate(overrides.pin)}
    fresh = [
        s
        for s in stories
        if s.sectors
        and now - max_age <= s.published
        and s.feed_url not in dropped_feeds
        and s.id not in drops
        and s.url not in drops
    ]
    groups = [g for g in cluster(fresh) if not _already_sent(g, seen)]
    merged = [_merge(group, weights) for group in groups]
    pin_rank = {}
    for group, story in zip(groups, merged, strict=True):
        ranks = [pins[key] for s in group for key in (s.id, s.url) if key in pins]
        if ranks:
            pin_rank[story.id] = min(ranks)

    def order(story: Story) -> tuple[int, float, str]:
        pinned = pin_rank.get(story.id, len(pins))
        return (pinned, -_score(story, weights, now, half_life), story.id)

    merged.sort(key=order)
    sections = []
    for sector in sectors:
        picks = tuple(s for s in merged if sector.slug in s.sectors)
        if picks:
            sections.append(Section(sector, picks))
    return Edition(
        publication,
        edition_date,
        tuple(sections),
        per_sector,
        note=overrides.note,
        pinned=tuple(sorted(pin_rank, key=pin_rank.__getitem__)),
    )


def _score(
    story: Story, weights: Mapping[str, float], now: datetime, half_life: timedelta
) -> float:
    """Feed weight, times 1.6 for a second outlet (2.2 for a third...), halved per half-life."""
    outlets = 1 + len(story.also_in)
    age = max(0.0, (now - story.published).total_seconds())
    freshness = math.pow(0.5, age / half_life.total_seconds())
    return weights.get(story.feed_url, 1.0) * (1 + 0.6 * (outlets - 1)) * freshness


def _feeds_named(names: Collection[str], feed_names: Mapping[str, str]) -> set[str]:
    """Feed URLs for the given names or URLs (``feed_names`` maps URL → name)."""
    wanted = {n.casefold() for n in names}
    return {url for url, name in feed_names.items() if url in names or name.casefold() in wanted}


def _already_sent(group: Sequence[Story], seen: Seen) -> bool:
    for story in group:
        if story.id in seen.ids or story.url in seen.urls:
            return True
    if seen.headlines:
        for story in group:
            if _similar(headline_key(story.title), seen.headlines):
                return True
    return False


def _similar(key: str, others: Sequence[str]) -> bool:
    if key in others:
        return True
    if len(key.split()) < _MIN_FUZZY_WORDS:
        return False
    mine = sorted(w for w in key.split() if w.isdigit())
    for other, _, _ in process.extract(
        key,
        others,
        scorer=fuzz.token_sort_ratio,
        processor=None,
        score_cutoff=SAME_HEADLINE,
        limit=None,
    ):
        if sorted(w for w in other.split() if w.isdigit()) == mine:
            return True
    return False


def cluster(stories: Sequence[Story]) -> list[list[Story]]:
    """Groups of stories that are the same news: same canonical link or near-identical headline."""
    parent = list(range(len(stories)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first_by_url: dict[str, int] = {}
    keys = [headline_key(s.title) for s in stories]
    numbers = [sorted(w for w in key.split() if w.isdigit()) for key in keys]
    for i, story in enumerate(stories):
        j = first_by_url.setdefault(story.url, i)
        if j != i:
            join(i, j)
    for i, key in enumerate(keys):
        if len(key.split()) < _MIN_FUZZY_WORDS:
            matches = [(k, 100.0, j) for j, k in enumerate(keys) if k == key]
        else:
            matches = process.extract(
                key,
                keys,
                scorer=fuzz.token_sort_ratio,
                processor=None,
                score_cutoff=SAME_HEADLINE,
                limit=None,
            )
        for _, _, j in matches:
            same_numbers = numbers[i] == numbers[j]  # "18-month" vs "24-month" are not one story
            if j != i and stories[j].feed_url != stories[i].feed_url and same_numbers:
                join(i, j)
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

    ``chosen`` empty means every sector, in the configured order; otherwise sections come in the
    reader's order. Each section keeps ``per_sector`` stories; the rest of its stories become its
    ``more`` headlines. Sections left with nothing are dropped.
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
    if chosen:
        order = {slug: i for i, slug in enumerate(chosen)}
        out.sort(key=lambda section: order[section.sector.slug])
    return tuple(out)
