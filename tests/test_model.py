"""The sector model: learnt from the store, scored on history it never saw, used as a second
opinion only where the rules are silent or weak, and only once switched on."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter import flows
from newsletter.config import load_config
from newsletter.flows import prepare as prepared
from newsletter.models import FeedSource, SectorFit, Story
from newsletter.sectors import judge
from newsletter.sectors.model import Example, Opinion, SectorModel, evaluate_on_history, train
from newsletter.sectors.rules import Verdict
from newsletter.store import Store
from tests.conftest import NOW, write_config

OIL = ["crude", "brent", "opec", "refinery", "barrels", "tanker"]
CHIPS = ["chipmaker", "semiconductor", "wafer", "foundry", "nvidia", "tsmc"]
FILLER = ["group", "says", "week", "plans", "new", "report", "update", "talks"]


def _headlines(rng: random.Random, words: list[str], n: int) -> list[str]:
    return [" ".join([*rng.sample(words, 2), *rng.sample(FILLER, 3)]) for _ in range(n)]


@pytest.mark.slow
def test_the_model_learns_and_is_scored_on_newer_stories_it_never_saw() -> None:
    rng = random.Random(3)
    examples = [
        Example(t, "", label, when=i)
        for i, (t, label) in enumerate(
            [(t, "oil-gas") for t in _headlines(rng, OIL, 60)]
            + [(t, "ai-semiconductors") for t in _headlines(rng, CHIPS, 60)]
        )
    ]
    rng.shuffle(examples)
    score = evaluate_on_history(examples)
    assert score.trained_on == 96 and score.scored_on == 24
    assert score.accuracy > 0.9
    model = SectorModel.from_bytes(train(examples).to_bytes())  # weights only, no pickle
    (opinion,) = model.opinions([("Tanker queue grows outside the refinery", "")])
    assert opinion.label == "oil-gas" and opinion.probability > 0.5


def test_a_second_opinion_fills_silence_and_never_overrides_the_rules(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {}))
    silent = Verdict((), (), (), {}, 0.0)
    off = Verdict((), (), (), {}, 9.0)
    weak = Verdict(("oil-gas",), (4.0,), (0.7,), {"oil-gas": 4.0}, 0.0)
    sure = Opinion("oil-gas", 0.95)
    assert judge.second_opinion(config, silent, sure) == (SectorFit("oil-gas", 1.0),)
    assert judge.second_opinion(config, off, sure) == ()  # off-topic stays out
    assert judge.second_opinion(config, weak, sure) == (SectorFit("oil-gas", 1.0),)
    unsure = (SectorFit("oil-gas", 0.7),)
    assert judge.second_opinion(config, weak, Opinion("oil-gas", 0.5)) == unsure
    other = judge.second_opinion(config, weak, Opinion("ai-semiconductors", 0.99))
    assert other == unsure


def test_rules_train_learns_from_the_store_and_the_model_waits_until_switched_on(
    tmp_path: Path,
) -> None:
    rng = random.Random(5)
    path = write_config(
        tmp_path,
        {"classify": {"min_score": 3, "model": {"enabled": False, "min_examples": 20}}},
    )
    config = load_config(path)
    feed = FeedSource("Wire", "https://wire.example.com/feed", "https://wire.example.com/feed")
    store = Store.open(config.database_url)
    try:
        store.feeds.sync_feeds([feed])
        titles = [f"Brent crude {t}" for t in _headlines(rng, OIL, 30)]
        titles += [f"Chipmaker semiconductor {t}" for t in _headlines(rng, CHIPS, 30)]
        stories = [
            Story(
                id=f"s{i}",
                title=title,
                url=f"https://wire.example.com/{i}",
                summary="",
                source="Wire",
                published=NOW - timedelta(minutes=i),
                feed_url=feed.url,
            )
            for i, title in enumerate(titles)
        ]
        store.feeds.record_fetched(
            feed, stories, now=NOW, status=200, etag=None, last_modified=None
        )
        examples, score = flows.train_model(config, store, now=NOW)
        assert examples == 60 and score.scored_on == 12
        assert store.stories.latest_model() is not None
        assert flows.active_model(config, store) is None  # off by default
        on = dataclasses.replace(
            config,
            file=config.file.model_copy(
                update={
                    "classify": config.file.classify.model_copy(
                        update={
                            "model": config.file.classify.model.model_copy(update={"enabled": True})
                        }
                    )
                }
            ),
        )
        assert flows.active_model(on, store) is not None
        assert prepared.load_stories(on, store)  # the model's opinions merge without error
    finally:
        store.close()
