"""A real day: an edition built from the real feeds in ../shared/corpus/feeds (general news wires
beside industry feeds), with their dates made fresh. No story shown (lead or "more" headline) is
in another language than the publication's, and none comes from the plant-biology preprints,
the medical news or the football club."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from newsletter import flows
from newsletter.config import load_config
from newsletter.edition import digest
from newsletter.ingest.language import detect
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


@pytest.mark.slow
def test_a_real_day_shows_only_english_stories_from_outlets_an_editor_keeps(
    tmp_path: Path,
) -> None:
    config = load_config(_config(tmp_path))
    store = Store.open(config.database_url)
    try:
        report = flows.collect_all(config, store, now=NOW)
        assert sum(r.new for r in report.results) > 800
        _make_fresh(store)
        built = flows.build(config, store, now=NOW)
    finally:
        store.close()
    assert built.edition is not None
    sections = digest.layout(built.edition)
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
