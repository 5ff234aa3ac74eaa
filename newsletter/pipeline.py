"""Composes the stages: ``collect_all``, ``load_stories``, ``build``, ``preview``.

Collaborators (store, HTTP transport, clock) come in as arguments; the ``cli`` package builds
the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from newsletter import articles, digest, language, personalize, render
from newsletter.classify import Verdict
from newsletter.collect import Transport, collect_feeds
from newsletter.config import Config, day_sponsor, load_overrides
from newsletter.errors import StoryNotFound
from newsletter.fetching import Collected, FetchLimits
from newsletter.models import (
    Edition,
    FeedResult,
    FeedStatus,
    FetchOutcome,
    Label,
    Overrides,
    RenderedEmail,
    Section,
    Story,
)
from newsletter.prepared import clustered, load_stories, prepare
from newsletter.sectors import make_classifier
from newsletter.store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")
STOP_POLL = 0.2  # seconds between looks at a stop request while feeds are fetched


@dataclass(frozen=True, slots=True)
class CollectReport:
    results: tuple[FeedResult, ...]  # one per configured feed, in config order
    pruned: int  # old stories deleted
    seconds: float
    stopped: bool = False  # a stop was asked for: the feeds not fetched yet were left


def fetch_limits(config: Config) -> FetchLimits:
    return FetchLimits.from_config(config.file.collect)


def parse_workers(configured: int, feeds: int) -> int:
    """Processes for parsing: as configured, or one per CPU when there are many feeds."""
    if configured:
        return configured
    return (os.cpu_count() or 1) if feeds >= 50 else 1


def collect_all(
    config: Config,
    store: Store,
    *,
    now: datetime,
    transport: Transport | None = None,
    retry_gone: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> CollectReport:
    """Fetch every configured feed once, store new stories and feed health, prune old stories.

    ``should_stop`` (a signal) ends the fetching at once: the feeds stored so far stay, the
    others are left for the next collection, and no article page is fetched."""
    started = time.perf_counter()
    sources = config.feeds
    store.sync_feeds(sources)
    states = store.feed_states()
    results: dict[str, FeedResult] = {}
    active = []
    for feed in sources:
        state = states.get(feed.url)
        if state is not None and state.status == FeedStatus.GONE:
            if not retry_gone:
                results[feed.url] = FeedResult(
                    feed, FetchOutcome.GONE, error="skipped: the server said 410 Gone"
                )
                continue
            store.reactivate(feed)
        active.append(feed)

    async def fetch_and_store() -> None:
        # each feed is stored as soon as it is parsed, while the others are still on the way
        async for item in collect_feeds(
            active,
            states=states,
            now=now,
            contact_url=config.publication.contact_url,
            limits=fetch_limits(config),
            transport=transport,
            parse_workers=parse_workers(config.file.collect.parse_workers, len(active)),
        ):
            results[item.fetch.feed.url] = _record(store, item, now)

    stopped = _run(_stoppable(fetch_and_store(), should_stop))
    if stopped:
        for feed in sources:  # the feeds not fetched: said so, their health untouched
            results.setdefault(feed.url, FeedResult(feed, FetchOutcome.NOT_FETCHED))
        ordered = tuple(results[feed.url] for feed in sources)
        return CollectReport(ordered, 0, time.perf_counter() - started, stopped=True)
    fetch_teasers(config, store, now=now, transport=transport)
    pruned = store.prune(before=now - timedelta(days=config.file.collect.keep_days))
    if any(r.new or r.updated for r in results.values()):
        # judge and cluster the new stories now, so the build at send time finds them done
        prepare(config, store, since=now - timedelta(hours=config.file.digest.max_age_hours))
    ordered = tuple(results[feed.url] for feed in sources)
    return CollectReport(ordered, pruned, time.perf_counter() - started)


async def _stoppable(
    work: Coroutine[Any, Any, None], should_stop: Callable[[], bool] | None
) -> bool:
    """Run ``work``, cancelled as soon as ``should_stop`` says so; True when it was."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=STOP_POLL)
        if should_stop is not None and should_stop() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return True
    task.result()
    return False


def page_limits(config: Config) -> articles.PageLimits:
    return articles.PageLimits.from_config(config.file.collect)


def fetch_teasers(
    config: Config,
    store: Store,
    *,
    now: datetime,
    transport: Transport | None = None,
) -> int:
    """Take teasers from the article pages of recent stories whose feed gave a thin one.

    Each story's page is fetched at most once: every outcome, a lead or an error, is stored.
    Returns how many pages were fetched.
    """
    feeds = {f.url for f in config.feeds if f.fetch_teasers and f.location.startswith("http")}
    teasers = config.file.collect.teasers
    if not feeds or not teasers.max_per_run:
        return 0
    since = now - timedelta(hours=config.file.digest.max_age_hours)
    limits = page_limits(config)
    todo = [
        task
        for task in store.pages_to_fetch(feeds, since=since, limit=-1)
        if articles.needs_teaser(task.title, task.summary, limits.min_length)
    ][: teasers.max_per_run]
    if not todo:
        return 0
    leads: list[articles.Lead] = []

    async def fetch() -> None:
        leads.extend(
            await articles.fetch_leads(
                todo,
                contact_url=config.publication.contact_url,
                limits=limits,
                transport=transport,
            )
        )

    _run(fetch())
    for lead in leads:
        store.record_page(lead.story_id, teaser=lead.teaser, error=lead.error, now=now)
        if lead.error:
            logger.info("no teaser from the page of story %s: %s", lead.story_id, lead.error)
    return len(leads)


def _record(store: Store, item: Collected, now: datetime) -> FeedResult:
    """Write one feed's outcome to the store; the result says what happened."""
    fetch, feed = item.fetch, item.fetch.feed
    if fetch.not_modified:
        store.record_not_modified(feed, now=now, moved_to=fetch.moved_to)
        return FeedResult(
            feed, FetchOutcome.NOT_MODIFIED, moved_to=fetch.moved_to, seconds=item.seconds
        )
    if item.error is not None:
        store.record_failure(feed, item.error, now=now, status=fetch.status, gone=fetch.gone)
        logger.info("feed %s failed: %s", feed.name, item.error)
        status = FetchOutcome.GONE if fetch.gone else FetchOutcome.FAILED
        return FeedResult(feed, status, error=item.error, seconds=item.seconds)
    counts = store.record_fetched(
        feed,
        item.stories,
        now=now,
        status=fetch.status,
        etag=fetch.headers.get("etag"),
        last_modified=fetch.headers.get("last-modified"),
        moved_to=fetch.moved_to,
    )
    return FeedResult(
        feed,
        FetchOutcome.OK,
        len(item.stories),
        counts.new,
        counts.updated,
        warnings=item.warnings,
        moved_to=fetch.moved_to,
        seconds=item.seconds,
    )


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run to the end, also when called from code that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def explain_story(config: Config, store: Store, story_id: str) -> tuple[Story, Verdict]:
    """A stored story and why the rules give it its sectors, or ``StoryNotFound``."""
    story = store.story(story_id)
    if story is None:
        raise StoryNotFound(
            f"no stored story has the id {story_id!r}",
            hint="Story ids are in the first column of `newsletter stories --json` (id).",
        )
    hints = {feed.url: feed.sector for feed in config.feeds}
    verdict = make_classifier(config).explain(
        story.title, story.summary, hints.get(story.feed_url), story.url
    )
    return story, verdict


@dataclass(frozen=True, slots=True)
class Built:
    """The day's edition, or None with the reason there is none."""

    edition: Edition | None
    edition_date: date
    reason: str = ""
    overrides_file: Path | None = None


def _days_covering(span: timedelta) -> timedelta:
    """Whole days back to the oldest edition that can hold a story still within ``span``."""
    return timedelta(days=min(math.ceil(span.total_seconds() / 86400) + 1, 36500))


def edition_date_for(config: Config, now: datetime) -> date:
    """The edition's date: today in the schedule's time zone."""
    return now.astimezone(ZoneInfo(config.file.schedule.timezone)).date()


def build(config: Config, store: Store, *, now: datetime) -> Built:
    """Today's edition from the stored stories: new ones only, with the editor's overrides."""
    settings = config.file.digest
    max_age = timedelta(hours=settings.max_age_hours)
    day = edition_date_for(config, now)
    overrides, overrides_file = load_overrides(config, day)
    stories = load_stories(config, store, since=now - max_age)
    accepted = config.languages
    stories = clustered(store, [s for s in stories if language.allowed(s.language, accepted)])
    _keep_moves_as_labels(store, stories, overrides, now=now)
    edition = digest.build_edition(
        stories,
        config.sectors,
        publication=config.publication.name,
        edition_date=day,
        now=now,
        per_sector=settings.per_sector,
        max_age=max_age,
        feed_weights={feed.url: feed.weight for feed in config.feeds},
        feed_names={feed.url: feed.name for feed in config.feeds},
        seen=store.sent_before(day, since=day - _days_covering(max_age)),
        overrides=overrides,
        half_life=timedelta(hours=settings.freshness_half_life_hours),
        per_storyline=settings.per_storyline,
        moves=dict(overrides.move),
    )
    present = {section.sector.slug for section in edition.sections}
    edition = dataclasses.replace(edition, sponsor=day_sponsor(config, overrides, day, present))
    if edition.sections:
        return Built(edition, day, overrides_file=overrides_file)
    on_topic = sum(1 for s in stories if s.sectors)
    reason = (
        f"no new story fits any sector: {len(stories)} stories from the last "
        f"{settings.max_age_hours} hours, {on_topic} of them in a sector, and those were all "
        "sent before or dropped by the editor"
        if on_topic
        else f"no story from the last {settings.max_age_hours} hours fits any sector "
        f"({len(stories)} stories considered)"
    )
    logger.warning("no edition for %s: %s", day, reason)
    return Built(None, day, reason, overrides_file)


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
            store.add_label(
                Label(story.title, story.summary, story.url, slug, "editor", story.id), now=now
            )


def render_settings(config: Config) -> render.RenderSettings:
    return render.RenderSettings.from_config(
        config.publication, config.file.email, config.file.schedule
    )


@dataclass(frozen=True, slots=True)
class PreviewResult:
    built: Built
    edition: Edition | None
    sections: tuple[Section, ...]
    email: RenderedEmail | None
    html_path: Path | None
    text_path: Path | None


def preview(
    config: Config,
    store: Store,
    *,
    out_dir: Path,
    now: datetime,
    sectors: Sequence[str] = (),
) -> PreviewResult:
    """Build today's edition and write ``digest.html`` and ``digest.txt`` without sending.

    When there is no edition today, nothing is written and the result says why.
    """
    built = build(config, store, now=now)
    if built.edition is None:
        return PreviewResult(built, None, (), None, None, None)
    edition = built.edition
    sections = digest.layout(edition, sectors)
    env = render.make_environment(config.templates_dir)
    variant = render.render_email(env, edition, sections, settings=render_settings(config))
    email = personalize.Personalizer(variant).fill(
        personalize.preview_values(config.publication.base_url)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "digest.html"
    text_path = out_dir / "digest.txt"
    html_path.write_text(email.html, encoding="utf-8")
    text_path.write_text(email.text, encoding="utf-8")
    return PreviewResult(built, edition, sections, email, html_path, text_path)
