"""The collect flow: fetch every feed, store what came, prune old stories, and judge and
cluster the new ones (``prepare``) so a build finds them done. Teasers from article pages
(``fetch_teasers``) are a step of their own, off the collection's path: the scheduler takes
them after each collection that brought something new, ``newsletter collect --teasers`` at
once; a build uses what is there.

Collaborators (store, HTTP transport, clock) come in as arguments; the ``cli`` package and the
scheduler build the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from newsletter.config import Config
from newsletter.flows.prepare import prepare
from newsletter.ingest import articles
from newsletter.ingest.collect import Transport, collect_feeds
from newsletter.ingest.fetching import Collected, FetchLimits
from newsletter.models import FeedSource, FeedStatus, FetchOutcome, Story
from newsletter.records import FeedState, PageToFetch
from newsletter.store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")
STOP_POLL = 0.2  # seconds between looks at a stop request while feeds are fetched


@dataclass(frozen=True, slots=True)
class FeedResult:
    """What collecting one feed did: counts on success, the error otherwise."""

    feed: FeedSource
    status: FetchOutcome
    found: int = 0  # stories read from the feed
    new: int = 0  # stories not seen before
    updated: int = 0  # stories whose title or summary changed
    error: str | None = None
    warnings: tuple[str, ...] = ()
    moved_to: str | None = None  # a permanent redirect to this URL was recorded
    unreachable: bool = False  # failed before reaching the host (no name, no connection)
    seconds: float = 0.0  # time spent fetching and parsing


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
    only: Collection[str] | None = None,
) -> CollectReport:
    """Fetch every configured feed once, store new stories and feed health, prune old stories;
    ``only`` (configured URLs) fetches those feeds alone (the desk's "retry now").

    ``should_stop`` (a signal) ends the fetching at once: the feeds stored so far stay, and
    the others are left for the next collection. No article page is fetched here
    (``fetch_teasers``)."""
    started = time.perf_counter()
    sources = config.feeds
    store.feeds.sync_feeds(sources)
    if only is not None:
        sources = tuple(feed for feed in sources if feed.url in only)
    states = store.feeds.feed_states()
    results: dict[str, FeedResult] = {}
    active = _to_fetch(
        store, sources, states, results, now=now, retry_gone=retry_gone, by_hand=only
    )

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
    pruned = store.feeds.prune(before=now - timedelta(days=config.file.collect.keep_days))
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


def _wanting_teasers(config: Config, store: Store, *, now: datetime) -> list[PageToFetch]:
    """The recent stories of teaser feeds whose page was never read and whose feed summary is
    too thin, newest first."""
    feeds = {f.url for f in config.feeds if f.fetch_teasers and f.location.startswith("http")}
    if not feeds or not config.file.collect.teasers.max_per_run:
        return []
    since = now - timedelta(hours=config.file.digest.max_age_hours)
    minimum = config.file.collect.teasers.min_length
    return [
        task
        for task in store.stories.pages_to_fetch(feeds, since=since, limit=-1)
        if articles.needs_teaser(task.title, task.summary, minimum)
    ]


def teasers_waiting(config: Config, store: Store, *, now: datetime) -> int:
    """How many stories wait for a teaser from their article page."""
    return len(_wanting_teasers(config, store, now=now))


def fetch_teasers(
    config: Config,
    store: Store,
    *,
    now: datetime,
    transport: Transport | None = None,
    resolve: articles.Resolve | None = None,
) -> int:
    """Take teasers from the article pages of recent stories whose feed gave a thin one (at
    most ``collect.teasers.max_per_run`` pages, many hosts at once), then judge those stories
    again with their new teaser.

    Each story's page is fetched at most once: every outcome, a lead or an error, is stored
    (a page on a host whose name does not resolve is not tried, and waits for a later run).
    Returns how many pages were fetched.
    """
    todo = _wanting_teasers(config, store, now=now)
    if not todo:
        return 0
    limits = page_limits(config)
    leads: list[articles.Lead] = []
    extra = {} if resolve is None else {"resolve": resolve}

    async def fetch() -> None:
        leads.extend(
            await articles.fetch_leads(
                todo,
                contact_url=config.publication.contact_url,
                limits=limits,
                transport=transport,
                limit=config.file.collect.teasers.max_per_run,
                **extra,
            )
        )

    _run(fetch())
    for lead in leads:
        store.stories.record_page(lead.story_id, teaser=lead.teaser, error=lead.error, now=now)
        if lead.error:
            logger.info("no teaser from the page of story %s: %s", lead.story_id, lead.error)
    if leads:  # the stories with a page read are judged and clustered again
        prepare(config, store, since=now - timedelta(hours=config.file.digest.max_age_hours))
    return len(leads)


def _to_fetch(
    store: Store,
    sources: Sequence[FeedSource],
    states: Mapping[str, FeedState],
    results: dict[str, FeedResult],
    *,
    now: datetime,
    retry_gone: bool,
    by_hand: Collection[str] | None,
) -> list[FeedSource]:
    """The feeds to fetch now; those left alone get their result in ``results``: a gone one
    (unless ``retry_gone``), one whose server asked to wait (unless asked for ``by_hand``)."""
    active = []
    for feed in sources:
        state = states.get(feed.url) or FeedState()
        wait = state.retry_after
        if wait is not None and now < wait and by_hand is None:
            said = f"not fetched before {wait:%Y-%m-%d %H:%M} UTC (the server's Retry-After)"
            results[feed.url] = FeedResult(feed, FetchOutcome.WAITING, error=said)
            continue
        if state.status == FeedStatus.GONE:
            if not retry_gone:
                said = "skipped: the server said 410 Gone"
                results[feed.url] = FeedResult(feed, FetchOutcome.GONE, error=said)
                continue
            store.feeds.reactivate(feed)
        active.append(feed)
    return active


def _record(store: Store, item: Collected, now: datetime) -> FeedResult:
    """Write one feed's outcome to the store; the result says what happened."""
    fetch, feed = item.fetch, item.fetch.feed
    if fetch.not_modified:
        store.feeds.record_not_modified(feed, now=now, moved_to=fetch.moved_to)
        return FeedResult(
            feed, FetchOutcome.NOT_MODIFIED, moved_to=fetch.moved_to, seconds=item.seconds
        )
    if item.error is not None:
        error, until = item.error, retry_time(fetch.retry_after, now)
        if until is not None:
            error += f"; the server asked to wait until {until:%Y-%m-%d %H:%M} UTC"
        store.feeds.record_failure(
            feed, error, now=now, status=fetch.status, gone=fetch.gone, retry_after=until
        )
        logger.info("feed %s failed: %s", feed.name, error)
        status = FetchOutcome.GONE if fetch.gone else FetchOutcome.FAILED
        return FeedResult(
            feed, status, error=error, unreachable=fetch.unreachable, seconds=item.seconds
        )
    counts = store.feeds.record_fetched(
        feed,
        _redated(item.stories, now) if feed.sample else item.stories,
        now=now,
        status=fetch.status,
        etag=fetch.headers.get("etag"),
        last_modified=fetch.headers.get("last-modified"),
        moved_to=fetch.moved_to,
        redate=feed.sample,
        languages=item.languages,  # as the parse judged them: ``prepare`` has none left to do
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


MOST_WAIT = timedelta(hours=24)  # the longest a server's Retry-After keeps its feed unfetched


def retry_time(header: str, now: datetime) -> datetime | None:
    """When a Retry-After (seconds, or an HTTP date) lets the feed be fetched again, at most
    ``MOST_WAIT`` away; None when it says nothing, or a time already past."""
    header = header.strip()
    try:
        if header.isdigit():
            until = now + timedelta(seconds=int(header))
        else:
            until = parsedate_to_datetime(header).astimezone(UTC)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return min(until, now + MOST_WAIT) if until > now else None


def _redated(stories: Sequence[Story], now: datetime) -> list[Story]:
    """A sample feed's stories moved in time together, the newest to ``now``."""
    if not stories:
        return []
    shift = now - max(story.published for story in stories)
    return [dataclasses.replace(story, published=story.published + shift) for story in stories]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run to the end, also when called from code that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()
