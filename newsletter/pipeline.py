"""Composes the stages: ``collect_all``, ``load_stories``, ``build``, ``preview``.

Collaborators (store, HTTP transport, clock) come in as arguments; ``cli.py`` builds the real ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from newsletter import digest, render
from newsletter.classify import Classifier, SectorRule
from newsletter.collect import fetch_all, parse_feed
from newsletter.config import Config
from newsletter.errors import FeedError
from newsletter.models import Edition, FeedResult, RenderedEmail, Section, Story
from newsletter.store import Store

logger = logging.getLogger(__name__)


def collect_all(
    config: Config,
    store: Store,
    *,
    now: datetime,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[FeedResult]:
    """Fetch every configured feed once and store new stories; one result per feed, in order."""
    sources = config.feeds
    store.sync_feeds(sources)
    settings = config.file.collect
    fetched = asyncio.run(
        fetch_all(
            sources,
            timeout=settings.timeout_seconds,
            max_concurrency=settings.max_concurrency,
            contact_url=config.publication.contact_url,
            transport=transport,
        )
    )
    results: list[FeedResult] = []
    for item in fetched:
        feed = item.feed
        if item.error is not None or item.content is None:
            error = item.error or "no content"
            store.record_failure(feed, error, now=now)
            results.append(FeedResult(feed, "failed", error=error))
            logger.info("feed %s failed: %s", feed.name, error)
            continue
        try:
            found, warnings = parse_feed(item.content, feed, headers=item.headers, now=now)
        except FeedError as exc:
            store.record_failure(feed, exc.message, now=now)
            results.append(FeedResult(feed, "failed", error=exc.message))
            logger.info("feed %s failed: %s", feed.name, exc.message)
            continue
        new, updated = store.save_stories(feed, found, now=now)
        store.record_success(feed, now=now)
        results.append(FeedResult(feed, "ok", len(found), new, updated, warnings=tuple(warnings)))
    return results


def make_classifier(config: Config) -> Classifier:
    rules = [SectorRule(s.slug, dict(s.keywords), tuple(s.exclude)) for s in config.file.sectors]
    settings = config.file.classify
    return Classifier(
        rules,
        title_weight=settings.title_weight,
        min_score=settings.min_score,
        hint_bonus=settings.hint_bonus,
    )


def load_stories(config: Config, store: Store, *, since: datetime | None = None) -> list[Story]:
    """Stored stories with their sectors from the current rules (so edited rules apply at once)."""
    classifier = make_classifier(config)
    hints = {feed.url: feed.sector for feed in config.feeds}
    return [
        dataclasses.replace(
            story,
            sectors=classifier.classify(story.title, story.summary, hints.get(story.feed_url)),
        )
        for story in store.stories(since=since)
    ]


def build(config: Config, store: Store, *, now: datetime) -> Edition:
    """Today's edition (in the schedule's time zone) from the stored stories."""
    settings = config.file.digest
    max_age = timedelta(hours=settings.max_age_hours)
    return digest.build_edition(
        load_stories(config, store, since=now - max_age),
        config.sectors,
        publication=config.publication.name,
        edition_date=now.astimezone(ZoneInfo(config.file.schedule.timezone)).date(),
        now=now,
        per_sector=settings.per_sector,
        max_age=max_age,
        feed_weights={feed.url: feed.weight for feed in config.feeds},
    )


@dataclass(frozen=True, slots=True)
class PreviewResult:
    edition: Edition
    sections: tuple[Section, ...]
    email: RenderedEmail
    html_path: Path
    text_path: Path


def preview(
    config: Config,
    store: Store,
    *,
    out_dir: Path,
    now: datetime,
    sectors: Sequence[str] = (),
) -> PreviewResult:
    """Build today's edition and write ``digest.html`` and ``digest.txt`` without sending."""
    edition = build(config, store, now=now)
    sections = digest.layout(edition, sectors)
    env = render.make_environment(config.templates_dir)
    email = render.render_email(env, edition, sections, site_url=config.publication.url)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "digest.html"
    text_path = out_dir / "digest.txt"
    html_path.write_text(email.html, encoding="utf-8")
    text_path.write_text(email.text, encoding="utf-8")
    return PreviewResult(edition, sections, email, html_path, text_path)
