from __future__ import annotations

import dataclasses
from datetime import timedelta

from newsletter.edition.cluster import cluster
from newsletter.edition.digest import build_edition, layout
from newsletter.models import Overrides, Sector, SectorFit, Seen, Story, sector_fits
from newsletter.text import headline_key
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
        summary="The report gives the figures and what comes next.",
        source=source,
        published=NOW - timedelta(hours=hours),
        feed_url=f"feed:{source}",
        fits=sector_fits(sectors),
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


def test_more_lists_what_a_full_section_left_out_before_bare_and_weak_stories() -> None:
    """ "More" headlines: first the stories that would have led but the section was full, then
    the sure ones without a teaser, then the weak ones, each in rank order (a fresher weak or
    bare story does not push a left-out lead down)."""
    teaser = "The company said the new line starts next spring and employs four hundred people."
    lead = _story("lead", "Cell plant opens in Ohio", ("evs",), hours=1)
    weak = _story("weak", "A van was shown", ("evs",), source="B", hours=2)
    bare = _story("bare", "Pack prices fall again", ("evs",), source="C", hours=3)
    left = _story("left", "Charging network adds sites", ("evs",), source="D", hours=4)
    stories = [
        dataclasses.replace(lead, summary=teaser),
        dataclasses.replace(weak, summary=teaser, fits=(SectorFit("evs", 0.6),)),
        dataclasses.replace(bare, summary=""),
        dataclasses.replace(left, summary=teaser),
    ]
    edition = build_edition(
        stories, SECTORS, publication="P", edition_date=NOW.date(), now=NOW, per_sector=1
    )
    (section,) = layout(edition)
    assert [s.id for s in section.stories] == ["lead"]
    assert [s.id for s in section.more] == ["left", "bare", "weak"]


def test_one_prolific_outlet_gives_way_to_the_others_after_its_first_two() -> None:
    """Five fresher stories of one feed and two of another: the first feed's two best come
    first, then the other feed's, in rank order, then the rest."""
    titles = ["Pack prices", "Cell plant", "Charger rollout", "Fleet order", "Recall widens"]
    prolific = [_story(f"a{i}", titles[i], ("evs",), hours=i + 1) for i in range(5)]
    other = [
        _story("b0", "Grid storage tender", ("evs",), source="B", hours=8),
        _story("b1", "Battery swap trial", ("evs",), source="B", hours=9),
    ]
    edition = build_edition(
        [*prolific, *other],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        per_sector=3,
        overrides=Overrides(pin=("a4",)),
    )
    (section,) = layout(edition)
    # the pin keeps its place and is one of its feed's two
    assert [s.id for s in section.stories] == ["a4", "a0", "b0"]
    assert [s.id for s in section.more] == ["b1", "a1", "a2", "a3"]


def test_near_identical_headlines_from_other_outlets_merge_and_name_them() -> None:
    stories = [
        _story(
            "a",
            "Ministers agree review of the price cap on Russian refined products",
            ("sanctions",),
            source="Alpha",
            hours=3,
        ),
        _story(
            "b",
            "Ministers agree to review price cap on Russian refined products",
            ("sanctions",),
            source="Beta",
            hours=2,
        ),
        _story(
            "c",
            "Ministers agree review of the price cap on Russian refined products!",
            ("sanctions",),
            source="Gamma",
            hours=1,
        ),
        _story(
            "d",
            "Nickel hits 18-month high on Indonesian export curbs",
            ("sanctions",),
            source="Delta",
        ),
        _story(
            "e",
            "Copper hits 18-month high on Chilean mine disruption",
            ("sanctions",),
            source="Delta",
            hours=1.5,
        ),
    ]
    edition = build_edition(stories, SECTORS, publication="P", edition_date=NOW.date(), now=NOW)
    (section,) = edition.sections
    kept = {s.id: s for s in section.stories}
    assert set(kept) == {"a", "d", "e"}  # similar-looking but different news stay apart
    assert kept["a"].also_in == ("Beta", "Gamma")
    assert section.stories[0].id == "a"  # three outlets outrank fresher single reports


def test_ranking_weighs_freshness_outlets_and_feed_weight() -> None:
    old_trusted = _story("t", "Trusted but older report", ("evs",), source="Trusted", hours=10)
    fresh = _story("f", "Fresh report from a normal feed", ("evs",), source="Normal", hours=1)
    edition = build_edition(
        [old_trusted, fresh], SECTORS, publication="P", edition_date=NOW.date(), now=NOW
    )
    assert [s.id for s in edition.sections[0].stories] == ["f", "t"]
    weighted = build_edition(
        [old_trusted, fresh],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        feed_weights={"feed:Trusted": 3.0},
    )
    assert [s.id for s in weighted.sections[0].stories] == ["t", "f"]


def test_stories_sent_before_are_not_picked_again_nor_their_copies() -> None:
    sent = _story(
        "s",
        "Battery maker opens its third gigafactory in Europe",
        ("evs",),
        source="Alpha",
        url="https://alpha.example.com/gigafactory",
    )
    copy = _story(
        "c",
        "Battery maker opens third gigafactory in Europe",
        ("evs",),
        source="Beta",
        url="https://beta.example.com/other-link",
    )
    new = _story("n", "Charging network doubles its rapid chargers", ("evs",))
    seen = Seen(
        ids=frozenset({"s"}), urls=frozenset({sent.url}), headlines=(headline_key(sent.title),)
    )
    edition = build_edition(
        [sent, copy, new], SECTORS, publication="P", edition_date=NOW.date(), now=NOW, seen=seen
    )
    assert [s.id for sec in edition.sections for s in sec.stories] == ["n"]


def test_editor_pins_drops_and_note() -> None:
    stories = [
        _story("a", "First story about electric cars", ("evs",), source="Alpha", hours=1),
        _story("b", "Second story about electric cars", ("evs",), source="Alpha", hours=2),
        _story("c", "Third story about electric cars", ("evs",), source="Beta", hours=3),
        _story("d", "Fourth story about electric cars", ("evs",), source="Gamma", hours=4),
    ]
    overrides = Overrides(
        note="Markets are closed on Thursday.",
        pin=("https://gamma.example.com/d",),
        drop=("a",),
        drop_feeds=("beta",),
    )
    edition = build_edition(
        stories,
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        overrides=overrides,
        feed_names={"feed:Beta": "Beta"},
    )
    assert [s.id for s in edition.sections[0].stories] == ["d", "b"]
    assert edition.note == "Markets are closed on Thursday." and edition.pinned == ("d",)


OTHERS = [  # the day's other news, from other outlets: the event's names are rare among them
    _story(f"o{n}", title, ("oil-gas",), source=f"Outlet {n}", hours=5 + n)
    for n, title in enumerate(
        [
            "Refiner restarts crude unit after storm",
            "Pipeline operator wins permit for coastal line",
            "Tanker rates climb on winter demand",
            "Gas storage fills faster than expected",
            "Drilling count slips for third week",
            "Shale producer trims capital budget",
            "Offshore field begins first production",
            "Utility signs long contract for cargoes",
            "Lubricants maker lifts prices in Asia",
            "Jet fuel demand recovers at hubs",
        ]
    )
]
PLANT = [  # yesterday's event from three outlets: one story of the sent edition, "also in" two
    ("p1", "Voltara Motors opens $3.2 billion battery plant in Ohio", "VoltWire", 29),
    ("p2", "Voltara opens Ohio battery factory, adding 2,400 jobs", "Charge Daily", 28),
    ("p3", "Voltara Motors' new Ohio gigafactory starts output", "EV Insider", 30),
]


def _yesterday() -> tuple[list[Story], Seen]:
    """The event's reports as the store has them (one stored cluster), and what was sent: the
    edition kept the cluster as one story, p3."""
    reports = [
        dataclasses.replace(_story(i, t, ("evs",), source=src, hours=h), cluster="p3")
        for i, t, src, h in PLANT
    ]
    p3 = reports[2]
    seen = Seen(frozenset({p3.id}), frozenset({p3.url}), (headline_key(p3.title),), (p3,))
    return reports, seen


def _evs(stories: list[Story], seen: Seen, overrides: Overrides | None = None) -> list[Story]:
    edition = build_edition(
        [*stories, *OTHERS],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        seen=seen,
        overrides=overrides,
    )
    return [s for section in edition.sections for s in section.stories if s.sectors == ("evs",)]


def test_a_later_development_of_an_event_sent_yesterday_is_shown_as_an_update() -> None:
    """Reported a day later in words of its own, a development shares the event's names and is
    grouped with it: the whole group counted as sent, and the news was never shown."""
    reports, seen = _yesterday()
    second = _story(
        "n1",
        "Voltara Motors to add second Ohio battery line after strong start",
        ("evs",),
        source="VoltWire",
        hours=3,
    )
    groups = cluster([*reports, second, *OTHERS])
    assert any({"p3", "n1"} <= {s.id for s in group} for group in groups)
    assert [(s.id, s.update) for s in _evs([*reports, second], seen=seen)] == [("n1", True)]
    # yesterday's reports alone, or a retelling the same day: nothing new
    assert _evs(reports, seen=seen) == []
    late = _story("r1", "Voltara opens Ohio battery plant", ("evs",), source="Echo", hours=26)
    assert _evs([*reports, dataclasses.replace(late, cluster="p3")], seen=seen) == []


def test_an_event_sent_before_is_shown_again_when_an_editor_pins_one_of_its_reports() -> None:
    """A pin on a report of an event sent before did nothing, and said nothing."""
    reports, seen = _yesterday()
    late = _story("r1", "Voltara opens Ohio battery plant", ("evs",), source="Echo", hours=26)
    late = dataclasses.replace(late, cluster="p3")
    (shown,) = _evs([*reports, late], seen=seen, overrides=Overrides(pin=("r1",)))
    assert "r1" in {shown.id, *(r.id for r in shown.reports)} or "Echo" in shown.also_in
