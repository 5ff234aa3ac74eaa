"""The sector model and the store: the active model for a build, and ``rules train``, which
learns it from the stored stories the rules classified decisively and from the editor's labels.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.sectors.judge import make_classifier
from newsletter.sectors.model import (
    NONE,
    Example,
    HistoryScore,
    SectorModel,
    evaluate_on_history,
    train,
)
from newsletter.store import Store

logger = logging.getLogger(__name__)


def active_model(config: Config, store: Store) -> SectorModel | None:
    """The stored sector model, when it is switched on and learnt from enough stories."""
    settings = config.file.classify.model
    if not settings.enabled:
        return None
    stored = store.stories.latest_model()
    if stored is None or stored.examples < settings.min_examples:
        return None
    model = SectorModel.from_bytes(stored.model)
    if not set(model.labels) - {NONE} <= set(config.sector_slugs):
        logger.warning("the sector model knows sectors the config has not; retrain it")
        return None
    return model


def training_examples(config: Config, store: Store) -> list[Example]:
    """Stored stories the rules classified decisively, and the editor's labels (counted 3x)."""
    classifier = make_classifier(config)
    hints = {feed.url: feed.sector for feed in config.feeds}
    decisive = classifier.lead_score * 1.5
    examples = []
    for s in store.stories.stored():
        verdict = classifier.judge(s.title, s.summary, hints.get(s.feed_url), s.url)
        when = s.published.timestamp()
        if verdict.sectors and verdict.scores[0] >= decisive and verdict.off_topic == 0:
            examples.append(Example(s.title, s.summary, verdict.sectors[0], 1.0, when))
        elif not verdict.sectors and verdict.off_topic >= decisive:
            examples.append(Example(s.title, s.summary, NONE, 1.0, when))
    known = set(config.sector_slugs)
    examples += [
        Example(label.title, label.summary, label.sector, 3.0, math.inf)
        for label in store.stories.labels()
        if label.sector in known
    ]
    return examples


def train_model(config: Config, store: Store, *, now: datetime) -> tuple[int, HistoryScore]:
    """Learn the sector model from the store, score it on the newer history, and keep it."""
    examples = training_examples(config, store)
    labels = {e.label for e in examples}
    if len(examples) < 20 or len(labels) < 2:
        raise ConfigError(
            f"only {len(examples)} stories to learn from ({len(labels)} sectors)",
            hint="Collect for a few days first; the model learns from stories the rules "
            "classify decisively and from your moves in the overrides files.",
        )
    score = evaluate_on_history(examples)
    model = train(examples)
    report = (
        f"trained on {len(examples)}; history check: {score.accuracy:.3f} on the newest "
        f"{score.scored_on} after training on {score.trained_on}"
    )
    store.stories.save_model(model.to_bytes(), examples=len(examples), report=report, now=now)
    return len(examples), score
