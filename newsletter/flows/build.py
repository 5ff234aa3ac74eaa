"""The build flow: the day's edition from the stored stories (new ones only, the editor's
overrides applied, the optional writer's summaries added), ready to preview or to freeze and
send."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from newsletter.config import Config, day_sponsor, load_overrides
from newsletter.edition import brief, digest
from newsletter.edition.storylines import WINDOW
from newsletter.flows.prepare import clustered, load_stories
from newsletter.flows.write import write_brief
from newsletter.ingest import language
from newsletter.models import Edition, EditionKind, Overrides, Seen, Story
from newsletter.records import Label
from newsletter.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Built:
    """The day's edition, or None with the reason there is none."""

    edition: Edition | None
    edition_date: date
    reason: str = ""
    overrides_file: Path | None = None
    considered: int = 0  # stories from the window, when there is no edition
    on_topic: int = 0  # of them, those in a sector
    unmatched: tuple[str, ...] = ()  # the editor's overrides that change nothing, in words


def _days_covering(span: timedelta) -> timedelta:
    """Whole days back to the oldest edition that can hold a story still within ``span``."""
    return timedelta(days=min(math.ceil(span.total_seconds() / 86400) + 1, 36500))


def edition_date_for(config: Config, now: datetime) -> date:
    """The edition's date: today in the schedule's time zone."""
    return now.astimezone(ZoneInfo(config.file.schedule.timezone)).date()


def build(
    config: Config,
    store: Store,
    *,
    now: datetime,
    ask_writer: bool = True,
    labels: bool = True,
    day: date | None = None,
    kind: EditionKind = EditionKind.DAILY,
) -> Built:
    """Today's edition from the stored stories: new ones only, with the editor's overrides.
    ``ask_writer=False`` (the send) uses only what the optional writer wrote before;
    ``labels=False`` (the desk's page, a GET) leaves the editor's moves to be kept as labels
    by the builds that may write (the send, a preview). ``day``: the edition's date when it is
    not today's in the schedule's zone (the scheduler builds a date at its first delivery,
    in the earliest zone). A weekly edition (``kind``) holds the week's biggest storylines,
    whatever the daily editions sent, without the day's overrides."""
    if kind == EditionKind.WEEKLY:
        return _weekly(config, store, now=now, day=day or edition_date_for(config, now))
    settings = config.file.digest
    max_age = timedelta(hours=settings.max_age_hours)
    day = day or edition_date_for(config, now)
    overrides, overrides_file = load_overrides(config, day)
    stories = _window(config, store, since=now - max_age)
    unmatched = _unmatched(config, overrides, stories, overrides_file)
    if labels:
        _keep_moves_as_labels(store, stories, overrides, now=now)
    edition = digest.build_edition(
        stories,
        config.sectors,
        **_outlets(config),
        edition_date=day,
        now=now,
        per_sector=settings.per_sector,
        max_age=max_age,
        seen=store.editions.sent_before(day, since=day - _days_covering(max(max_age, WINDOW))),
        overrides=overrides,
        half_life=timedelta(hours=settings.freshness_half_life_hours),
        per_storyline=settings.per_storyline,
        moves=dict(overrides.move),
        brief_size=settings.brief,
    )
    present = {section.sector.slug for section in edition.sections}
    sponsor = day_sponsor(config, overrides, day, present)
    edition = dataclasses.replace(edition, sponsor=sponsor, subject=overrides.subject)
    if edition.sections:
        if config.file.writer.base_url:  # the optional writer; the edition goes out without it
            edition = write_brief(config, store.written, edition, now=now, ask=ask_writer)
        if overrides.intro:  # the editor's intro stands instead of the writer's
            edition = dataclasses.replace(edition, intro=overrides.intro, intro_covers=())
        unmatched += _notes_outside_the_brief(edition, overrides_file)
        return Built(edition, day, overrides_file=overrides_file, unmatched=unmatched)
    on_topic = sum(1 for s in stories if s.sectors)
    reason = _no_edition(len(stories), on_topic, settings.max_age_hours)
    # each caller says so (the command's error, the scheduler's log): once is enough
    logger.info("no edition for %s: %s", day, reason)
    return Built(None, day, reason, overrides_file, len(stories), on_topic, unmatched)


def _unmatched(
    config: Config, overrides: Overrides, stories: Sequence[Story], path: Path | None
) -> tuple[str, ...]:
    """The day's overrides that change nothing (``preview`` and ``review`` print them; the
    log has them with -v)."""
    if path is None:
        return ()
    feed_names = {feed.url: feed.name for feed in config.feeds}
    hours = config.file.digest.max_age_hours
    found = tuple(digest.unmatched(overrides, stories, feed_names, hours))
    for line in found:
        logger.info("%s: %s", path, line)
    return found


def _notes_outside_the_brief(edition: Edition, path: Path | None) -> tuple[str, ...]:
    """The editor's "why it matters" lines on stories the brief does not hold: the email shows
    them under the brief's stories only."""
    brief_ids = {item.story.id for item in brief.pick(edition, digest.layout(edition))[0]}
    found = tuple(
        f'notes: {key!r} is not in the brief, where a "why it matters" line shows: pin it '
        "to put it there"
        for key, _ in edition.notes
        if key not in brief_ids
    )
    for line in found:
        logger.info("%s: %s", path, line)
    return found


def _window(config: Config, store: Store, *, since: datetime) -> list[Story]:
    """The stored stories since then in the publication's languages, judged and clustered."""
    stories = load_stories(config, store, since=since)
    accepted = config.languages
    return clustered(store, [s for s in stories if language.allowed(s.language, accepted)])


def _outlets(config: Config) -> dict[str, Any]:
    """What every edition is built with from the config: the name, each feed's weight and
    name."""
    return {
        "publication": config.publication.name,
        "feed_weights": {feed.url: feed.weight for feed in config.feeds},
        "feed_names": {feed.url: feed.name for feed in config.feeds},
    }


def _no_edition(considered: int, on_topic: int, hours: int) -> str:
    """Why there is no edition, in words."""
    if on_topic:
        return (
            f"no new story fits any sector: {considered} stories from the last {hours} hours, "
            f"{on_topic} of them in a sector, and those were all sent before or dropped by the "
            "editor"
        )
    return f"no story from the last {hours} hours fits any sector ({considered} stories considered)"


def _weekly(config: Config, store: Store, *, now: datetime, day: date) -> Built:
    """The week to ``day``: its biggest storylines in each sector, each once."""
    weekly, digest_settings = config.file.weekly, config.file.digest
    window = timedelta(days=weekly.days)
    stories = _window(config, store, since=now - window)
    edition = digest.build_edition(
        stories,
        config.sectors,
        **_outlets(config),
        edition_date=day,
        now=now,
        per_sector=weekly.per_sector,
        max_age=window,
        seen=Seen(),  # the daily editions sent them: the week's review shows them again
        overrides=Overrides(),
        half_life=timedelta(days=weekly.days),  # a Monday story counts on Sunday too
        per_storyline=digest_settings.per_storyline,
        moves={},
        brief_size=weekly.brief,
    )
    present = {section.sector.slug for section in edition.sections}
    sponsor = day_sponsor(config, Overrides(), day, present)
    edition = dataclasses.replace(edition, sponsor=sponsor, kind=EditionKind.WEEKLY)
    if edition.sections:
        return Built(edition, day)
    reason = f"no story of the last {weekly.days} days fits any sector"
    logger.info("no weekly edition for %s: %s", day, reason)
    return Built(None, day, reason, considered=len(stories))


def _keep_moves_as_labels(
    store: Store, stories: Sequence[Story], overrides: Overrides, *, now: datetime
) -> None:
    """The editor's moves are labelled examples: the sector model learns from them."""
    moves = dict(overrides.move)
    if not moves:
        return
    for story in stories:
        slug = moves.get(story.id) or moves.get(story.url)
        if slug is not None:
            store.stories.add_label(
                Label(story.title, story.summary, story.url, slug, "editor", story.id), now=now
            )
