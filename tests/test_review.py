"""``newsletter review``: each storyline shown, in its section and place, with its reports,
score and reasons; the stored edition of a day as readers got it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.edition.digest import build_edition
from newsletter.flows.review import review
from newsletter.models import EditionStatus
from newsletter.store import Store
from tests.conftest import NOW
from tests.test_storylines import DISPUTE, SECTORS, _stories


def test_review_shows_the_top_story_then_each_section_with_reasons(
    demo_config: Config, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(demo_config.database_url)
    flows.collect_all(demo_config, store, now=NOW)
    store.close()
    monkeypatch.setenv("NEWSLETTER_NOW", NOW.isoformat())
    result = CliRunner().invoke(
        cli, ["--config", str(demo_dir / "config.yaml"), "review", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    shown = data["shown"]
    assert data["stored"] is False and shown[0]["place"] == "brief"
    assert shown[0]["section"] == "Today's brief" and "outlets" in shown[0]["reasons"][0]
    ids = [s["id"] for s in shown]
    assert len(ids) == len(set(ids))  # each storyline once
    leads = [s for s in shown if s["place"] == "lead"]
    assert leads and all(s["rank"] >= 1 and s["score"] > 0 for s in leads)
    for more in (s for s in shown if s["place"] == "more"):
        assert any("more" in r or "full" in r or "not sure" in r for r in more["reasons"])
    text = CliRunner().invoke(cli, ["--config", str(demo_dir / "config.yaml"), "review"])
    assert text.exit_code == 0 and shown[0]["title"] in text.output
    assert f"id {shown[0]['id']}" in text.output  # the id an override needs
    # an item of two outlets names both, the shown report's first
    two = next(s for s in shown if "carried by 2 outlets" in s["reasons"][0])
    assert f"carried by 2 outlets: {two['source']}, " in two["reasons"][0]


def test_review_of_a_stored_edition_shows_a_storyline_with_its_reports(tmp_path: Path) -> None:
    from newsletter.config import load_config
    from tests.conftest import write_config

    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url)
    edition = build_edition(
        _stories(DISPUTE, "d"), SECTORS, publication="P", edition_date=NOW.date(), now=NOW
    )
    store.editions.save_edition(edition, status=EditionStatus.SENT, now=NOW)
    result = review(config, store, day=NOW.date(), now=NOW)
    store.close()
    assert result.stored
    (line,) = result.shown
    assert line.place == "brief" and len(line.story.reports) == 6 and line.outlets == 4
    assert line.reasons[0].startswith("carried by 4 outlets: ")
    assert line.reasons[0].endswith(" (and 6 more reports)")


def test_review_of_a_day_with_no_edition_says_so(demo_dir: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(demo_dir / "config.yaml"), "review", "2020-01-01"]
    )
    assert result.exit_code == 5
    assert "no stored edition of 2020-01-01" in result.output and "Hint:" in result.output


def test_review_shows_the_more_headlines_the_email_keeps_and_counts_the_rest(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.config import load_config

    path = demo_dir / "config.yaml"
    config = load_config(path)
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    uncapped = review(config, store, day=None, now=NOW)
    store.close()
    more = [s for s in uncapped.shown if s.place == "more"]
    assert len(more) > 3  # the demo day has more "more" headlines than the limit below
    path.write_text(path.read_text(encoding="utf-8") + "\nemail:\n  more_headlines: 3\n")
    monkeypatch.setenv("NEWSLETTER_NOW", NOW.isoformat())
    result = CliRunner().invoke(cli, ["--config", str(path), "review", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len([s for s in data["shown"] if s["place"] == "more"]) == 3  # as the email
    assert data["more_left_out"] == len(more) - 3
    text = CliRunner().invoke(cli, ["--config", str(path), "review"])
    assert f"{len(more) - 3} more headlines the email leaves out" in text.output
    assert "email.more_headlines: 3" in text.output
