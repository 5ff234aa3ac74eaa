from __future__ import annotations

from datetime import timedelta

from newsletter.digest import build_edition, layout
from newsletter.models import Sector, Story
from tests.conftest import NOW

SECTORS = (Sector("oil-gas", "Oil & Gas"), Sector("sanctions", "Sanctions"), Sector("evs", "EVs"))


def _story(
    sid: str,
    title: str,
    sectors: tuple[str, ...],
    *,
    source: str = "A",
    url: str = "",
    hours: float = 1,
) -> Story:
    return Story(
        id=sid,
        title=title,
        url=url or f"https://{source.lower()}.example.com/{sid}",
        summary="s",
        source=source,
        published=NOW - timedelta(hours=hours),
        feed_url=f"feed:{source}",
        sectors=sectors,
    )


def test_same_link_from_two_feeds_is_one_story_naming_the_other() -> None:
    shared = "https://wire.example.org/price-cap"
    edition = build_edition(
        [
            _story("a1", "Price cap reviewed", ("sanctions",), source="Alpha", url=shared, hours=2),
            _story(
                "b1", "Ministers review the price cap", ("sanctions",), source="Beta", url=shared
            ),
        ],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
    )
    (section,) = edition.sections
    (story,) = section.stories
    assert story.id == "a1" and story.also_in == ("Beta",)  # the earlier report is kept


def test_same_headline_with_different_case_and_punctuation_is_one_story() -> None:
    edition = build_edition(
        [
            _story("a1", "Copper hits 18-month high", ("oil-gas",), source="Alpha"),
            _story("b1", "Copper Hits 18-Month High!", ("oil-gas",), source="Beta"),
            _story("c1", "Another story entirely", ("oil-gas",), source="Gamma"),
        ],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
    )
    stories = edition.sections[0].stories
    assert len(stories) == 2
    assert stories[0].also_in  # carried by two outlets: ranks first


def test_off_topic_and_old_stories_are_left_out() -> None:
    edition = build_edition(
        [
            _story("a", "On topic", ("evs",)),
            _story("b", "Off topic", ()),
            _story("c", "Too old", ("evs",), hours=50),
        ],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        max_age=timedelta(hours=36),
    )
    assert [s.id for sec in edition.sections for s in sec.stories] == ["a"]
    assert [sec.sector.slug for sec in edition.sections] == ["evs"]


def test_layout_places_each_story_once_in_the_best_chosen_sector() -> None:
    both = _story("x", "Sanctions on tankers", ("sanctions", "oil-gas"))
    oil = _story("o", "Crude rises", ("oil-gas",))
    edition = build_edition([both, oil], SECTORS, publication="P", edition_date=NOW.date(), now=NOW)
    assert {s.id for s in edition.sections[0].stories} == {"x", "o"}  # candidate in both
    everything = layout(edition)
    placed = {sec.sector.slug: [s.id for s in sec.stories] for sec in everything}
    assert placed == {"oil-gas": ["o"], "sanctions": ["x"]}
    oil_only = layout(edition, ["oil-gas"])
    assert [[s.id for s in sec.stories] for sec in oil_only] == [["o", "x"]]  # tie: by id
    assert layout(edition, ["evs"]) == ()


def test_layout_keeps_per_sector_and_offers_the_rest_as_more() -> None:
    stories = [_story(f"s{i}", f"Story number {i}", ("evs",), hours=i) for i in range(1, 8)]
    edition = build_edition(
        stories, SECTORS, publication="P", edition_date=NOW.date(), now=NOW, per_sector=3
    )
    (section,) = layout(edition)
    assert [s.id for s in section.stories] == ["s1", "s2", "s3"]  # freshest first
    assert [s.id for s in section.more] == ["s4", "s5", "s6", "s7"]
