"""What a build derives from the stored stories, worked out once and kept in the store.

- ``load_stories``: every story with its sectors. A story's sectors are judged once per set of
  rules: they are kept with the fingerprint of the rules, the classification settings, the
  feeds' sector hints and the sector model that made them (``rules_fingerprint``), so an edited
  rule re-judges every story at the next build, and an unchanged one re-judges none.
- ``clustered``: the stories with the stored cluster of same-news stories each belongs to. Only
  pairs with a story new since the last run are compared; a cluster once found stays.

``newsletter collect`` (and the scheduler's collection) calls ``prepare`` after storing, so a
build at send time finds both done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime

from newsletter.config import Config
from newsletter.edition import cluster
from newsletter.flows.train import active_model
from newsletter.ingest import language
from newsletter.models import Story
from newsletter.sectors import rules
from newsletter.sectors.judge import make_classifier, second_opinion, wants_opinion
from newsletter.store import Store

logger = logging.getLogger(__name__)


def rules_fingerprint(config: Config, model_id: int | None) -> str:
    """A short hash of everything a story's sectors depend on besides its own text."""
    data = {
        "sectors": [s.model_dump(mode="json") for s in config.file.sectors],
        "classify": config.file.classify.model_dump(mode="json"),
        "hints": sorted((feed.url, feed.sector or "") for feed in config.feeds),
        "model": model_id,
        "judging": rules.JUDGING,  # how the rules judge, when that changes with an upgrade
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def judge_languages(store: Store, *, since: datetime | None = None) -> int:
    """Judge (once) the language of stored stories that have none yet; returns how many."""
    todo = store.stories.unjudged_languages(since=since)
    store.stories.set_languages(
        {t.id: language.detect(t.title, t.summary, t.declared) for t in todo}
    )
    return len(todo)


def load_stories(config: Config, store: Store, *, since: datetime | None = None) -> list[Story]:
    """Stored stories with their sectors under the current rules (so edited rules apply at
    once), and the sector model's second opinion when it is on; judged once per rules."""
    stored_model = store.stories.latest_model() if config.file.classify.model.enabled else None
    rules = rules_fingerprint(config, stored_model.id if stored_model else None)
    judge_languages(store, since=since)
    rows = store.stories.judged_stories(since=since, rules=rules)
    todo = [row.story for row in rows if not row.judged]
    if not todo:
        return [row.story for row in rows]
    fresh = {story.id: story for story in _judge(config, store, todo)}
    store.stories.save_judged({s.id: s.fits for s in fresh.values()}, rules=rules)
    kept = len(rows) - len(todo)
    logger.info("judged the sectors of %d stories (%d kept from before)", len(todo), kept)
    return [fresh.get(row.story.id, row.story) for row in rows]


def _judge(config: Config, store: Store, stories: Sequence[Story]) -> list[Story]:
    classifier = make_classifier(config)
    hints = {feed.url: feed.sector for feed in config.feeds}
    verdicts = [classifier.judge(s.title, s.summary, hints.get(s.feed_url), s.url) for s in stories]
    model = active_model(config, store)
    asked = [i for i, v in enumerate(verdicts) if wants_opinion(v)] if model else []
    opinions = {}
    if model is not None and asked:
        texts = [(stories[i].title, stories[i].summary) for i in asked]
        opinions = dict(zip(asked, model.opinions(texts), strict=True))
    out = []
    for i, (story, verdict) in enumerate(zip(stories, verdicts, strict=True)):
        fits = second_opinion(config, verdict, opinions[i]) if i in opinions else verdict.fits
        out.append(dataclasses.replace(story, fits=fits))
    return out


def clustered(store: Store, stories: Sequence[Story]) -> list[Story]:
    """The stories in a sector, with their clusters found (new ones only) and kept."""
    on_topic = [s for s in stories if s.sectors]
    new = sum(1 for s in on_topic if not s.cluster)
    if not new:
        return list(stories)
    started = time.perf_counter()
    groups = cluster.cluster(on_topic)
    logger.info(
        "clustered %d stories (%d of them new) into %d in %.2f s",
        len(on_topic),
        new,
        len(groups),
        time.perf_counter() - started,
    )
    changed = cluster.cluster_ids(groups)
    store.stories.save_clusters(changed)
    return [
        dataclasses.replace(s, cluster=changed[s.id]) if s.id in changed else s for s in stories
    ]


def prepare(config: Config, store: Store, *, since: datetime) -> int:
    """Judge and cluster what a build will need; returns the stories in the window."""
    stories = clustered(store, load_stories(config, store, since=since))
    return len(stories)
