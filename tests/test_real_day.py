"""A real day: an edition built from the real feeds in ../shared/corpus/feeds (general news wires
beside industry feeds), with their dates made fresh. No story shown (lead or "more" headline) is
in another language than the publication's, and none comes from the plant-biology preprints,
the medical news or the football club."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from newsletter import flows
from newsletter.config import Config, load_config
from newsletter.edition import brief, digest, render
from newsletter.edition.thin import hidden_reason, thin_reason
from newsletter.flows.build import build
from newsletter.ingest.language import detect
from newsletter.models import Edition
from newsletter.store import Store
from tests.conftest import NOW, ROOT, SHARED

FEEDS = SHARED / "corpus" / "feeds"
pytestmark = pytest.mark.skipif(not FEEDS.is_dir(), reason="../shared/corpus is not present")

HINTS = {
    "Aerospace & Defense": "aerospace-defense",
    "AI & Semiconductors": "ai-semiconductors",
    "Business & Politics": "business-politics",
}
NEVER = ("bioRxiv", "Medscape", "FC Utrecht")  # publications an industry newsletter leaves out


def _config(folder: Path) -> Path:
    manifest = (FEEDS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    rows = list(csv.DictReader(manifest, delimiter="\t"))
    feeds = []
    for row in rows:
        feed = {"name": row["publication"], "url": str(FEEDS / row["file"])}
        if row["guessed_sector"] in HINTS:
            feed["sector"] = HINTS[row["guessed_sector"]]
        feeds.append(feed)
    defaults = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    body = {
        "sectors_file": str(ROOT / "config.yaml"),
        "classify": defaults["classify"],
        "digest": {"per_sector": 10},
        "feeds": feeds,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _make_fresh(store: Store) -> None:
    """Spread every story over the last 36 hours, as if the feeds had just been published."""
    from sqlalchemy import bindparam, select, update

    from newsletter.store.tables import stories

    with store.engine.begin() as conn:
        ids = conn.execute(select(stories.c.id).order_by(stories.c.published.desc(), stories.c.id))
        rows = [
            {"row_id": story_id, "when": NOW - timedelta(minutes=7 * (i % 300))}
            for i, (story_id,) in enumerate(ids)
        ]
        statement = (
            update(stories)
            .where(stories.c.id == bindparam("row_id"))
            .values(published=bindparam("when", type_=stories.c.published.type))
        )
        conn.execute(statement, rows)


@dataclass(frozen=True)
class RealDay:
    config: Config
    new: int  # stories collected
    edition: Edition


@pytest.fixture(scope="module")
def real_day(tmp_path_factory: pytest.TempPathFactory) -> RealDay:
    """The corpus collected once, its dates made fresh, and the edition built from it."""
    config = load_config(_config(tmp_path_factory.mktemp("real-day")))
    store = Store.open(config.database_url)
    try:
        report = flows.collect_all(config, store, now=NOW)
        _make_fresh(store)
        built = build(config, store, now=NOW)
    finally:
        store.close()
    assert built.edition is not None
    return RealDay(config, sum(r.new for r in report.results), built.edition)


@pytest.mark.slow
def test_a_real_day_shows_only_english_stories_from_outlets_an_editor_keeps(
    real_day: RealDay,
) -> None:
    assert real_day.new > 800
    sections = digest.layout(real_day.edition)
    shown = [s for section in sections for s in (*section.stories, *section.more)]
    assert len(shown) > 60
    leads = [s for section in sections for s in section.stories]
    assert len(leads) >= 30  # a real edition, not an empty one
    wrong_language = [s.title for s in shown if detect(s.title, s.summary) not in {"en", ""}]
    assert [s.title for s in shown if s.language not in {"en", ""}] == []
    assert len(wrong_language) <= 2  # the detector's own doubt on a few terse headlines
    assert [(s.source, s.title) for s in shown if s.source.startswith(NEVER)] == []
    titles = [s.title for s in leads]
    assert len(titles) == len(set(titles))  # no story twice


# the same events as the corpus carries them, read story by story: each may be shown once
SAME_EVENTS = [
    (
        "US Hits Canada With 50% Tariffs",
        "Canada Demand for Trucks Tariff Relief",
        "Canada Sets US Counter-Tariffs",
        "Trump tariffs hit Canada",
        "Quebec loses appetite",
        "US and Canada Race Against Clock",
        "Canada Nears Trump Trade Deal",
    ),
    ("US Envoy Warns Israel on Syria Base Attack", "Israel strikes southern Syria"),
    ("Economy Depends on the U.S. Dollar", "Argentina's Milei pitches to Wall Street"),
    ("Japan ready to act against sharp yen swings", "Why Japan's bar for yen intervention"),
    ("The MacBook Neo Is A Brilliant Move", "Apple takes wraps off new low-cost MacBook Neo"),
    ("Economic Isolation Plan Risks Iran", "Trump wants more economic pressure on Iran"),
    ("Newsom Prefers Paramount-AG Settlement", "Paramount and California to hold preliminary"),
    ("Putin says Ukraine opened 'Pandora's box'", "Putin Acknowledges Economic Impact"),
]
# different events that share a name or a place: never one storyline
DIFFERENT_EVENTS = [
    ("Lula Calls Trump to Resume Talks", "US Hits Canada With 50% Tariffs"),
    ("France agrees to accelerate air defence", "Putin says Ukraine opened 'Pandora's box'"),
]


@pytest.mark.slow
def test_a_real_day_shows_each_event_once_fresh_and_never_led_by_a_thin_item(
    real_day: RealDay,
) -> None:
    sections = digest.layout(real_day.edition)
    leads = [s for section in sections for s in section.stories]
    shown = [*leads, *(s for section in sections for s in section.more)]
    for event in SAME_EVENTS:
        carrying = [s.title for s in shown if any(part in s.title for part in event)]
        assert len(carrying) <= 1, carrying
    (tariffs,) = [s for s in shown if any(part in s.title for part in SAME_EVENTS[0])]
    assert len(tariffs.reports) >= 4  # the dispute's other reports, under it
    for one, other in DIFFERENT_EVENTS:
        for story in shown:
            titles = [r.title for r in (story, *story.reports)]
            assert not (any(one in t for t in titles) and any(other in t for t in titles))
    window = timedelta(hours=real_day.config.file.digest.max_age_hours)
    assert [s.title for s in shown if s.published < NOW - window] == []
    assert [(s.title, thin_reason(s)) for s in leads if thin_reason(s)] == []
    # videos, podcasts, promos and ceremonies are shown nowhere, not even as another report
    everything = [r for s in shown for r in (s, *s.reports)]
    assert [(s.title, hidden_reason(s)) for s in everything if hidden_reason(s)] == []
    assert not [s for s in leads if "| The Close" in s.title or "| Balance of Power" in s.title]


@pytest.mark.slow
def test_a_real_days_subject_is_a_whole_headline_and_the_preheader_names_the_next_two(
    real_day: RealDay,
) -> None:
    edition = real_day.edition
    sections = digest.layout(edition)
    items, _ = brief.pick(edition, sections)
    assert len(items) == edition.brief_size == 4
    email = render.render_email(render.make_environment(), edition, sections)
    heads = [brief.short_headline(item.story.title) for item in items]
    assert email.subject in heads and len(email.subject) <= brief.SUBJECT_CHARS
    assert not email.subject.endswith("\u2026")  # a whole headline, not a cut one
    assert not email.subject.endswith((" - Reuters", "Bloomberg"))  # no outlet's name
    following = [h for h in heads if h != email.subject][:2]
    assert email.preheader.startswith(f"Also: {following[0]}; {following[1]} | ")
    assert all(item.summary and len(item.summary) <= brief.MAX_CHARS for item in items)
    # the brief spans the sections: two of one section at most
    assert max(Counter(item.sector for item in items).values()) <= brief.PER_SECTION
