"""The stages composed over a real store: editions that never repeat, days without one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter import flows
from newsletter.config import load_config
from newsletter.edition import digest
from newsletter.flows import prepare as prepared
from newsletter.flows.build import build
from newsletter.flows.preview import preview
from newsletter.models import EditionStatus
from newsletter.sectors import rules as sector_rules
from newsletter.store import Store
from newsletter.store.tables import stories
from tests.conftest import NOW, ROOT, write_config
from tests.feedserver import FeedServer

ITEM = (
    "<item><title>{title}</title><link>https://{host}.example.com/{slug}</link>"
    "<pubDate>{date}</pubDate><description>{summary}</description></item>"
)


def _feed(*items: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def _item(
    title: str,
    slug: str,
    hours_before_now: float,
    host: str = "a",
    summary: str = "Crude oil and gas prices moved as refiners cut runs.",
) -> str:
    when = NOW - timedelta(hours=hours_before_now)
    return ITEM.format(
        title=title,
        slug=slug,
        host=host,
        date=when.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        summary=summary,
    )


def test_no_story_repeats_across_consecutive_editions(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    one = feed_server.add(
        "/one.xml",
        _feed(
            _item("Brent crude rises on supply worries", "brent", 5),
            _item("Refinery outage lifts diesel prices", "diesel", 6),
        ),
    )
    two = feed_server.add("/two.xml", _feed())
    config = load_config(
        write_config(
            tmp_path, {"feeds": [{"name": "One", "url": one}, {"name": "Two", "url": two}]}
        )
    )
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    day_one = build(config, store, now=NOW).edition
    assert day_one is not None
    first_ids = day_one.story_ids
    assert len(first_ids) == 2
    store.editions.save_edition(day_one, status=EditionStatus.SENT, now=NOW)

    # Early the next day, before anything new arrives: no edition, and the reason says why.
    built = build(config, store, now=NOW + timedelta(hours=20))
    assert built.edition is None
    assert "no new story fits any sector" in built.reason and "sent before" in built.reason

    tomorrow = NOW + timedelta(days=1)
    feed_server.add(
        "/one.xml",
        _feed(
            _item("Brent crude rises on supply worries", "brent", 29),  # still in the feed
            _item("Refinery outage lifts diesel prices", "diesel", 30),
            _item("LNG cargoes head to Europe as gas prices climb", "lng", 2),
        ),
    )
    feed_server.add(
        "/two.xml",
        _feed(  # another outlet's copy of yesterday's story
            _item("Refinery outage lifts diesel prices!", "diesel-copy", 3, host="b"),
        ),
    )
    flows.collect_all(config, store, now=tomorrow)
    day_two = build(config, store, now=tomorrow).edition
    assert day_two is not None
    titles = [s.title for sec in digest.layout(day_two) for s in sec.stories]
    assert titles == ["LNG cargoes head to Europe as gas prices climb"]
    assert not day_two.story_ids & first_ids
    store.editions.save_edition(day_two, status=EditionStatus.SENT, now=tomorrow)


def test_a_frozen_edition_does_not_count_as_sent(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.add("/f.xml", _feed(_item("Brent crude rises on supply worries", "b", 2)))
    config = load_config(write_config(tmp_path, {"feeds": [{"name": "F", "url": url}]}))
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    draft = build(config, store, now=NOW).edition
    assert draft is not None
    store.editions.save_edition(draft, status=EditionStatus.FROZEN, now=NOW)
    again = build(config, store, now=NOW + timedelta(hours=1)).edition
    assert again is not None and again.story_ids == draft.story_ids
    stored = store.editions.edition(NOW.date())
    assert stored is not None and stored.status == EditionStatus.FROZEN and stored.edition == draft


def test_no_edition_when_nothing_fits(tmp_path: Path) -> None:
    feed = tmp_path / "sport.xml"
    feed.write_bytes(
        _feed(_item("Local team wins the football final", "final", 2, summary="A late goal."))
    )
    config = load_config(write_config(tmp_path, {"feeds": [{"name": "Sport", "url": str(feed)}]}))
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    result = preview(config, store, out_dir=tmp_path / "out", now=NOW)
    assert result.email is None and not (tmp_path / "out").exists()
    assert (
        result.built.reason
        == "no story from the last 36 hours fits any sector (1 stories considered)"
    )
    assert (ROOT / "config.yaml").is_file()


def test_sectors_and_clusters_are_worked_out_once_and_kept(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    one = feed_server.add(
        "/one.xml", _feed(_item("Refinery strike cuts diesel output in France", "r", 2, "a"))
    )
    two = feed_server.add(
        "/two.xml", _feed(_item("Refinery strike cuts diesel output in France", "r2", 3, "b"))
    )
    feeds = [{"name": "One", "url": one}, {"name": "Two", "url": two}]
    config = load_config(write_config(tmp_path, {"feeds": feeds}))
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)  # collecting judges and clusters at once
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(stories.c.judged_rules, stories.c.judged, stories.c.cluster_id)
        ).all()
    assert len(rows) == 2 and all(r.judged_rules and r.judged for r in rows)
    assert rows[0].cluster_id and rows[0].cluster_id == rows[1].cluster_id
    kept = prepared.rules_fingerprint(config, None)
    assert {r.judged_rules for r in rows} == {kept}

    # a build reads the kept sectors: a wrong one stored under today's rules is believed ...
    with store.engine.begin() as conn:
        conn.execute(sa.update(stories).values(judged='[["evs-battery"], [2.0]]'))
    built = build(config, store, now=NOW).edition
    assert built is not None and [s.sector.slug for s in built.sections] == ["evs-battery"]
    assert len(built.sections[0].stories) == 1  # still one story: the cluster was kept

    # ... and edited rules judge every story again
    edited = write_config(tmp_path, {"feeds": feeds, "classify": {"min_score": 1.5}})
    config = load_config(edited)
    assert prepared.rules_fingerprint(config, None) != kept
    built = build(config, store, now=NOW).edition
    assert built is not None and built.sections[0].sector.slug == "oil-gas"


def test_an_upgrade_that_judges_differently_judges_every_story_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules' own way of judging (not only the configured rules) is in the fingerprint a
    stored story's sectors are kept under, so a new version's judging applies to the stories
    already in the store."""
    config = load_config(write_config(tmp_path, {"feeds": []}))
    kept = prepared.rules_fingerprint(config, None)
    monkeypatch.setattr(sector_rules, "JUDGING", sector_rules.JUDGING + 1)
    assert prepared.rules_fingerprint(config, None) != kept
