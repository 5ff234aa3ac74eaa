"""``review``: an editor's judgement you can run. Each storyline the day's edition shows, in
its section and place, with its other reports, its score and the reasons for its rank: what
an editor (or a test) reads to see why a story is there.

The edition reviewed is the stored one of that day (frozen or sent: what readers got), else
today's, built as ``preview --no-collect`` would build it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from newsletter.config import Config
from newsletter.edition.brief import capped_more, pick
from newsletter.edition.digest import confident_in, layout, rank_score
from newsletter.edition.thin import thin_reason
from newsletter.errors import EditionError
from newsletter.flows.build import build, edition_date_for
from newsletter.models import Edition, Section, Story
from newsletter.store import Store


@dataclass(frozen=True, slots=True)
class Shown:
    """One storyline as the edition shows it, and why there."""

    section: str  # the sector's name, or "Today's brief"
    place: str  # "brief", "lead" or "more"
    rank: int  # 1 = first in its section
    story: Story  # its report shown, with the others as ``story.reports``
    outlets: int
    score: float  # feed weight times freshness: what ranks storylines of as many outlets
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Review:
    edition_date: date
    stored: bool  # the stored edition of that day, not one built now
    shown: tuple[Shown, ...]
    unmatched: tuple[str, ...] = ()  # the day's overrides that change nothing (``build``)
    more_left_out: int = 0  # "more" headlines past ``email.more_headlines``: in no email


def review(config: Config, store: Store, *, day: date | None, now: datetime) -> Review:
    """The shown storylines of ``day``'s edition (default today), top story first."""
    today = edition_date_for(config, now)
    day = day or today
    stored = store.editions.edition(day)
    if stored is not None:
        shown, left_out = _shown(config, stored.edition, now=now)
        return Review(day, True, shown, more_left_out=left_out)
    if day != today:
        raise EditionError(
            f"there is no stored edition of {day}",
            day=day,
            hint="`newsletter review` without a date shows today's as it would be built now.",
        )
    built = build(config, store, now=now)
    if built.edition is None:
        raise EditionError(
            f"no edition for {day}: {built.reason}",
            day=day,
            hint="Collect again later (`newsletter collect`), or check the feeds with "
            "`newsletter status`.",
        )
    shown, left_out = _shown(config, built.edition, now=now)
    return Review(day, False, shown, built.unmatched, left_out)


def _shown(config: Config, edition: Edition, *, now: datetime) -> tuple[tuple[Shown, ...], int]:
    """The storylines as the email of every sector shows them (its "more" headlines capped
    as the email caps them), and how many "more" headlines that cap leaves out."""
    weights = {feed.url: feed.weight for feed in config.feeds}
    half_life = timedelta(hours=config.file.digest.freshness_half_life_hours)
    brief, every = pick(edition, layout(edition))
    sections = capped_more(every, config.file.email.more_headlines)
    left_out = sum(len(s.more) for s in every) - sum(len(s.more) for s in sections)
    out: list[Shown] = []

    def add(section: Section | None, place: str, rank: int, story: Story) -> None:
        slug = section.sector.slug if section else story.sectors[0]
        score = rank_score(story, weights, now, half_life)
        reasons = _reasons(edition, story, slug, place, weights, now)
        name = section.sector.name if section else "Today's brief"
        out.append(Shown(name, place, rank, story, story.outlets, score, reasons))

    for rank, item in enumerate(brief, start=1):
        add(None, "brief", rank, item.story)
    for section in sections:
        for rank, story in enumerate(section.stories, start=1):
            add(section, "lead", rank, story)
        for rank, story in enumerate(section.more, start=len(section.stories) + 1):
            add(section, "more", rank, story)
    return tuple(out), left_out


_NAMED = 5  # outlets named at most


def _outlets(story: Story) -> list[str]:
    """The outlets that carry a storyline, its shown report's first."""
    names = [story.source, *story.also_in]
    for report in story.reports:
        names += [report.source, *report.also_in]
    return list(dict.fromkeys(name for name in names if name))


def _reasons(
    edition: Edition,
    story: Story,
    slug: str,
    place: str,
    weights: dict[str, float],
    now: datetime,
) -> tuple[str, ...]:
    reasons = []
    if story.id in edition.pinned:
        reasons.append("pinned by an editor")
    others = f" (and {len(story.reports)} more reports)" if story.reports else ""
    names = _outlets(story)
    shown = ", ".join(names[:_NAMED]) + (
        f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
    )
    carried = f"carried by {story.outlets} outlet{'s' * (story.outlets != 1)}"
    reasons.append(f"{carried}: {shown}{others}" if story.outlets > 1 else f"{carried}{others}")
    hours = max(0.0, (now - story.published).total_seconds() / 3600)
    reasons.append(f"{hours:.0f} h old, feed weight {weights.get(story.feed_url, 1.0):g}")
    if story.update:
        reasons.append("a new development of a storyline sent before")
    if place == "brief":
        reasons.append("among the most outlets of the day's storylines (two a section at most)")
    elif place == "more":
        thin = thin_reason(story)
        if thin:
            reasons.append(f"{thin}: may only fill 'more'")
        elif not confident_in(story, slug):
            reasons.append("the rules are not sure enough of its sector to let it lead")
        else:
            reasons.append("the section was full")
    return tuple(reasons)
