from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.classify import Classifier, SectorRule
from newsletter.config import load_config
from newsletter.pipeline import make_classifier
from tests.conftest import ROOT

RULES = [
    SectorRule("evs", {"ev": 3, "electric vehicle": 3, "battery": 1}),
    SectorRule("oil", {"oil": 2, "crude": 3, "refiner*": 3}, exclude=["olive oil"]),
    SectorRule("rare", {"rare earth": 3}),
]


@pytest.fixture
def clf() -> Classifier:
    return Classifier(RULES, title_weight=2, min_score=2, hint_bonus=1)


def test_whole_words_only(clf: Classifier) -> None:
    assert clf.classify("Every level of the economy") == ()
    assert clf.classify("New EV tops sales") == ("evs",)
    assert clf.classify("EVs top sales") == ("evs",)  # a plain plural


def test_phrases_match_across_hyphens_and_case(clf: Classifier) -> None:
    assert clf.classify("RARE-EARTH plant opens") == ("rare",)
    assert clf.classify("Electric Vehicles sell") == ("evs",)


def test_prefix_wildcard(clf: Classifier) -> None:
    assert clf.classify("Refinery fire") == ("oil",)
    assert clf.classify("Refiners cut runs") == ("oil",)


def test_title_counts_more_than_summary(clf: Classifier) -> None:
    assert clf.classify("Crude slips", "An EV maker said so.") == ("oil", "evs")
    assert clf.classify("EV maker says", "Crude slips.") == ("evs", "oil")


def test_weak_words_alone_do_not_qualify(clf: Classifier) -> None:
    assert clf.classify("Phone deal", "A battery that lasts.") == ()


def test_exclusions_rule_a_sector_out(clf: Classifier) -> None:
    assert clf.classify("Olive oil prices soar") == ()


def test_hint_weighs_in_only_when_the_text_fits(clf: Classifier) -> None:
    assert clf.classify("Crude and EV news", hint="evs") == ("evs", "oil")
    assert clf.classify("Crude and EV news") == ("evs", "oil")  # tie: configured order
    assert clf.classify("Crude and EV news", hint="oil") == ("oil", "evs")
    assert clf.classify("Football results", hint="oil") == ()


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("Brent crude rises as OPEC+ extends cuts", "", "oil-gas"),
        ("Automaker recalls 40,000 electric cars over charging fault", "", "evs-battery"),
        ("Offshore wind farm reaches financial close", "", "esg-renewables"),
        ("Chipmaker lifts forecast on AI server demand", "", "ai-semiconductors"),
        ("Navy orders two more submarines", "The military programme grows.", "aerospace-defense"),
        ("Copper miner expands smelter capacity", "", "mining-metals"),
        ("Wheat and soybean futures fall", "", "rare-earths-commodities"),
        ("Treasury adds shipping firms to sanctions list", "", "sanctions-regulation"),
        ("Central bank raises interest rates to fight inflation", "", "business-politics"),
    ],
)
def test_default_rules_place_plain_headlines(title: str, summary: str, expected: str) -> None:
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    assert clf.classify(title, summary)[:1] == (expected,)


@pytest.mark.parametrize(
    "title",
    [
        "Tennis star reaches the final in straight sets",
        "Five recipes for a quick weeknight dinner",
        "Museum reopens its sculpture garden",
    ],
)
def test_default_rules_leave_off_topic_out(title: str) -> None:
    clf = make_classifier(load_config(Path(ROOT / "config.yaml")))
    assert clf.classify(title) == ()
