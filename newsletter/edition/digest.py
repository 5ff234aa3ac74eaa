"""Stories → the day's ``Edition``: recent, on-topic, new, duplicates merged, ranked. Pure.

``build_edition`` clusters the same story carried by several feeds (``cluster``: the same link,
near-identical headlines, or the same event in other words) into one, which names the other
outlets. Stories already sent in an earlier edition are left out, and so are their duplicates.
Stories rank by how many distinct outlets carry them, then by the feed's weight and freshness;
the editor's pins come first and drops never appear; each sector keeps its ``KEEP_PER_SECTOR``
best stories. ``layout`` gives what one reader sees: only
confident stories lead a section, and one storyline does not fill it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta

from newsletter.config.settings import DigestConfig
from newsletter.edition.cluster import cluster, storylines
from newsletter.edition.developments import developments, sent_before
from newsletter.edition.storylines import WINDOW, fold
from newsletter.edition.thin import hidden_reason, thin_reason
from newsletter.models import Edition, Overrides, Section, Sector, SectorFit, Seen, Story
from newsletter.text import site_of

# an edition keeps each sector's best stories up to this many: far more than any reader's email
# shows (five a section and a few "more" headlines, after the stories placed in another of the
# reader's sectors), so every variant is laid out from a small edition, and the stories further
# down are not counted as sent
KEEP_PER_SECTOR = 200
PER_SOURCE = 2  # a section's stories of one outlet before every other outlet's have a turn


_DIGEST = DigestConfig()  # the one source of these defaults: ``digest:`` in the config


def build_edition(
    stories: Iterable[Story],
    sectors: Sequence[Sector],
    *,
    publication: str,
    edition_date: date,
    now: datetime,
    per_sector: int = _DIGEST.per_sector,
    max_age: timedelta = timedelta(hours=_DIGEST.max_age_hours),
    feed_weights: Mapping[str, float] | None = None,
    feed_names: Mapping[str, str] | None = None,
    seen: Seen | None = None,
    overrides: Overrides | None = None,
    half_life: timedelta = timedelta(hours=_DIGEST.freshness_half_life_hours),
    per_storyline: int = _DIGEST.per_storyline,
    moves: Mapping[str, str] | None = None,
    brief_size: int = _DIGEST.brief,
) -> Edition:
    """Cluster duplicates, drop what was sent or dropped, rank, and gather each sector's stories."""
    weights = feed_weights or {}
    seen = seen or Seen()
    overrides = overrides or Overrides()
    dropped_feeds = _feeds_named(overrides.drop_feeds, feed_names or {})
    drops = set(overrides.drop)
    pins = {key: rank for rank, key in enumerate(overrides.pin)}
    stories = _moved(list(stories), moves or {})  # first: a move gives a story its sector
    fresh = [
        s
        for s in stories
        if s.sectors
        and now - max_age <= s.published
        and s.feed_url not in dropped_feeds
        and s.id not in drops
        and s.url not in drops
        and (s.id in pins or s.url in pins or not hidden_reason(s))
    ]
    groups = developments(cluster(_moved([*fresh, *_earlier(seen, fresh, now)], moves or {})), seen)
    merged = [_merge(group, weights) for group in groups]
    sent = sent_before(merged, groups, seen, pins)
    pin_rank = _pin_ranks(groups, merged, pins)
    moved = _moved_ids(groups, merged, moves or {})
    order = functools.partial(
        _rank, pins=pin_rank, unpinned=len(pins), moved=moved, score=(weights, now, half_life)
    )
    merged.sort(key=order)
    merged, pin_rank = _fold(merged, pin_rank, sent)
    merged.sort(key=order)
    sections = _tagged(_sections(merged, sectors))
    return Edition(
        publication,
        edition_date,
        tuple(sections),
        per_sector,
        note=overrides.note,
        pinned=tuple(sorted(pin_rank, key=pin_rank.__getitem__)),
        per_storyline=per_storyline,
        brief_size=brief_size,
        notes=_notes(merged, overrides.notes),
    )


def _notes(
    stories: Sequence[Story], notes: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """The editor's "why it matters" lines by story id (a note may name a story by its link, or
    any report of its storyline)."""
    wanted = dict(notes)
    found = []
    for story in stories:
        for key in (story.id, story.url, *(k for r in story.reports for k in (r.id, r.url))):
            if key in wanted:
                found.append((story.id, wanted[key]))
                break
    return tuple(found)


def _earlier(seen: Seen, fresh: Sequence[Story], now: datetime) -> list[Story]:
    """Stories sent before that are no longer fresh but still within a storyline's window:
    grouped with today's (never shown), so a storyline's next report is known as an update."""
    have = {s.id for s in fresh}
    return [
        dataclasses.replace(s, reports=(), follows="")
        for s in seen.stories
        if s.id not in have and now - WINDOW <= s.published
    ]


def _fold(
    ranked: Sequence[Story], pin_rank: Mapping[str, int], sent: Collection[str]
) -> tuple[list[Story], dict[str, int]]:
    """Each storyline with a new report as one story (``storylines.fold``), pinned when any
    report of it is; stories sent before, and copies of them, are left out."""
    leads, ranks = [], {}
    for lead, members in fold(ranked, sent=sent):
        leads.append(lead)
        pinned = [pin_rank[ranked[i].id] for i in members if ranked[i].id in pin_rank]
        if pinned:
            ranks[lead.id] = min(pinned)
    return leads, ranks


def _rank(
    story: Story,
    *,
    pins: Mapping[str, int],
    unpinned: int,
    moved: Collection[str],
    score: tuple[Mapping[str, float], datetime, timedelta],
) -> tuple[int, bool, int, float, str]:
    """A story's place in the edition: the pins, then the moves, then the day's story (the
    storyline most outlets carry), then its feed's weight and freshness."""
    weight = rank_score(story, *score)
    return (pins.get(story.id, unpinned), story.id not in moved, -story.outlets, -weight, story.id)


def _moved_ids(
    groups: Sequence[Sequence[Story]], merged: Sequence[Story], moves: Mapping[str, str]
) -> set[str]:
    """The stories the editor moved (a group: by any of its own): each leads its new sector,
    after the pins."""
    return {
        story.id
        for story, group in zip(merged, groups, strict=True)
        if any(s.id in moves or s.url in moves for s in group)
    }


def _moved(stories: Sequence[Story], moves: Mapping[str, str]) -> list[Story]:
    """The editor's corrections: a moved story (by id or link) leads with its new sector."""
    if not moves:
        return list(stories)
    out = []
    for story in stories:
        target = moves.get(story.id) or moves.get(story.url)
        if target is None:
            out.append(story)
            continue
        rest = (f for f in story.fits if f.sector != target)
        moved = SectorFit(target)  # the editor's choice is sure
        out.append(dataclasses.replace(story, fits=(moved, *rest)))
    return out


def rank_score(
    story: Story, weights: Mapping[str, float], now: datetime, half_life: timedelta
) -> float:
    """What ranks stories carried by as many outlets: the feed's weight, halved per half-life
    of age."""
    age = max(0.0, (now - story.published).total_seconds())
    freshness = math.pow(0.5, age / half_life.total_seconds())
    return weights.get(story.feed_url, 1.0) * freshness


def unmatched(
    overrides: Overrides, stories: Iterable[Story], feed_names: Mapping[str, str], hours: int
) -> list[str]:
    """The editor's overrides that change nothing, each in words: a story (by id or link) in
    no story of the last ``hours``, a feed no configured feed's name or URL."""
    stories = list(stories)
    keys = {key for story in stories for key in (story.id, story.url)}
    moved = {ref for ref, _ in overrides.move}
    unplaced = {k for s in stories if not s.sectors for k in (s.id, s.url)} - moved
    named = [
        ("pin", overrides.pin),
        ("drop", overrides.drop),
        ("move", [ref for ref, _ in overrides.move]),
        ("notes", [ref for ref, _ in overrides.notes]),
    ]
    out = [
        f"{key}: {ref!r} matches no story of the last {hours} hours (an id from `newsletter "
        "stories --json`, or the story's link)"
        for key, refs in named
        for ref in refs
        if ref not in keys
    ]
    out += [
        f"{key}: {ref!r} is a story the rules gave no sector: it shows once moved to one "
        f"(move: {{{ref}: SECTOR}})"
        for key, refs in named[:1] + named[3:]  # a pin or a note: a move places it
        for ref in refs
        if ref in unplaced
    ]
    feeds = {name.casefold() for name in feed_names.values()}
    out += [
        f"drop_feeds: {name!r} is not a configured feed (a feed's name or URL)"
        for name in overrides.drop_feeds
        if name not in feed_names and name.casefold() not in feeds
    ]
    return out


def _feeds_named(names: Collection[str], feed_names: Mapping[str, str]) -> set[str]:
    """Feed URLs for the given names or URLs (``feed_names`` maps URL → name)."""
    wanted = {n.casefold() for n in names}
    return {url for url, name in feed_names.items() if url in names or name.casefold() in wanted}


def _merge(group: Sequence[Story], weights: Mapping[str, float]) -> Story:
    """The story to keep (most trusted feed, earliest, fullest teaser), naming the others."""
    best = min(
        group,
        key=lambda s: (-weights.get(s.feed_url, 1.0), s.published, -len(s.summary), s.source, s.id),
    )
    # one article (one link) from one publisher's site is one outlet, however many of its feeds
    # carry it (a main feed and a topic feed); from another site's feed, another outlet
    linked = {(best.url, site_of(best.feed_url)): best.source}
    for story in sorted(group, key=lambda s: s.source):
        linked.setdefault((story.url, site_of(story.feed_url)), story.source)
    others = tuple(sorted(set(linked.values()) - {best.source}))
    return best if others == best.also_in else dataclasses.replace(best, also_in=others)


def confident_in(story: Story, slug: str) -> bool:
    """Whether the classifier is sure enough of ``story`` in ``slug`` to let it lead a section."""
    return any(f.sector == slug and f.confidence >= 1.0 for f in story.fits)


def _pin_ranks(
    groups: Sequence[Sequence[Story]], merged: Sequence[Story], pins: Mapping[str, int]
) -> dict[str, int]:
    """Each pinned story's rank among the pins (a group is pinned by any of its stories)."""
    pin_rank = {}
    for group, story in zip(groups, merged, strict=True):
        ranks = [pins[key] for s in group for key in (s.id, s.url) if key in pins]
        if ranks:
            pin_rank[story.id] = min(ranks)
    return pin_rank


def _tagged(sections: Sequence[Section]) -> list[Section]:
    """The sections' stories tagged with the pairs of uncommon headline words they share
    (``cluster.storylines``), worked out on the stories the edition keeps only."""
    kept = list({s.id: s for section in sections for s in section.stories}.values())
    lines = dict(zip((s.id for s in kept), storylines([s.title for s in kept]), strict=True))
    return [
        dataclasses.replace(
            section,
            stories=tuple(dataclasses.replace(s, storylines=lines[s.id]) for s in section.stories),
        )
        for section in sections
    ]


def _sections(ranked: Sequence[Story], sectors: Sequence[Sector]) -> list[Section]:
    """Each sector's best stories, in rank order (sectors with none left out)."""
    sections = []
    for sector in sectors:
        picks = tuple(s for s in ranked if sector.slug in s.sectors)[:KEEP_PER_SECTOR]
        if picks:
            sections.append(Section(sector, picks))
    return sections


def layout(edition: Edition, chosen: Sequence[str] = ()) -> tuple[Section, ...]:
    """What one reader sees: each story once, in the reader's best-fitting chosen sector.

    ``chosen`` empty means every sector, in the configured order; otherwise sections come in the
    reader's order. Each section shows up to ``per_sector`` stories the classifier is confident
    of, at most ``per_storyline`` of one storyline; the rest of its stories (weak ones included)
    become its ``more`` headlines, so a thin section shows fewer stories rather than weak ones.
    Sections left with nothing are dropped.
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
            shown, more = _split(_varied(mine, set(edition.pinned)), slug, edition)
            out.append(Section(section.sector, shown, more))
    if chosen:
        order = {slug: i for i, slug in enumerate(chosen)}
        out.sort(key=lambda section: order[section.sector.slug])
    return tuple(out)


def _varied(stories: Sequence[Story], pinned: set[str]) -> list[Story]:
    """A section's stories with each outlet's first ``PER_SOURCE`` first, in rank order, then
    the rest: one prolific feed fills neither a section nor its "more" headlines while other
    outlets have stories (a pinned story keeps its place)."""
    seen: dict[str, int] = {}
    first: list[Story] = []
    rest: list[Story] = []
    for story in stories:
        n = seen[story.source] = seen.get(story.source, 0) + 1
        (first if n <= PER_SOURCE or story.id in pinned else rest).append(story)
    return first + rest


def _split(
    stories: Sequence[Story], slug: str, edition: Edition
) -> tuple[tuple[Story, ...], tuple[Story, ...]]:
    """A section's shown stories (confident, not thin, a few per storyline) and its "more"
    headlines: first those that would have been shown (the section was full, or their
    storyline had its share), then confident ones without a teaser, then the rest (weak or a
    kind that never leads), each in rank order."""
    shown: list[Story] = []
    more: list[tuple[int, Story]] = []
    per_line: dict[int, int] = {}
    pinned = set(edition.pinned)
    cap = edition.per_storyline
    for story in stories:
        tier = _tier(story, slug, pinned)
        crowded = cap > 0 and any(per_line.get(line, 0) >= cap for line in story.storylines)
        if len(shown) < edition.per_sector and tier == 0 and not crowded:
            shown.append(story)
            for line in story.storylines:
                per_line[line] = per_line.get(line, 0) + 1
        else:
            more.append((tier, story))
    more.sort(key=lambda pair: pair[0])  # stable: rank order within a tier
    return tuple(shown), tuple(story for _, story in more)


def _tier(story: Story, slug: str, pinned: Collection[str]) -> int:
    """0: may lead; 1: sure of its sector, but no teaser; 2: the rest."""
    if story.id in pinned:
        return 0
    if not confident_in(story, slug):
        return 2
    reason = thin_reason(story)
    return 0 if not reason else 1 if reason == "no teaser" else 2


def sponsor_place(edition: Edition, sections: Sequence[Section]) -> int:
    """The index of the section the sponsor follows: its configured sector's, else the last
    of the reader's sections that comes before that sector in the configured order; -1
    (right after the top story) when there is none, or no sector was given."""
    sponsor = edition.sponsor
    if sponsor is None or not sponsor.after:
        return -1
    order = {s.sector.slug: i for i, s in enumerate(edition.sections)}
    limit = order.get(sponsor.after, -1)
    best, place = -1, -1
    for i, section in enumerate(sections):
        rank = order.get(section.sector.slug, len(order))
        if rank <= limit and rank > best:
            best, place = rank, i
    return place
