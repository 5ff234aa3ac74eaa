"""The brief that opens the email: the day's biggest storylines across a reader's sectors, each
summarised from every outlet that carried it; a subject a phone shows whole; a contents line."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timedelta

from newsletter.edition import brief, render
from newsletter.edition.digest import layout
from newsletter.edition.filters import when
from newsletter.models import Edition, Section, Sector, SectorFit, Story
from tests.conftest import NOW

EVS = Sector("evs", "EVs & Battery Technology")
OIL = Sector("oil", "Oil & Gas")
METALS = Sector("metals", "Mining & Metals")
TEASER = "The company said the new line starts next spring and employs four hundred people."


def _story(
    key: str, sector: str, *, outlets: int = 1, hours: int = 1, summary: str = TEASER
) -> Story:
    story = Story(
        key,
        f"Headline {key} about a plant in Ohio",
        f"https://wire.example.com/{key}",
        summary,
        "Wire",
        NOW - timedelta(hours=hours),
    )
    others = tuple(f"Outlet {n}" for n in range(1, outlets))
    return dataclasses.replace(story, fits=(SectorFit(sector, 2.0),), also_in=others)


def _edition(*sections: tuple[Sector, list[Story]], size: int = 4, **more: object) -> Edition:
    return Edition(
        "Top Insights Today",
        NOW.date(),
        tuple(Section(sector, tuple(stories)) for sector, stories in sections),
        per_sector=2,
        brief_size=size,
        **more,  # type: ignore[arg-type]
    )


def test_the_brief_takes_the_biggest_storylines_two_a_section_at_most_and_sections_refill() -> None:
    evs = [_story("e1", "evs", outlets=5), _story("e2", "evs", outlets=4), _story("e3", "evs")]
    evs += [_story("e4", "evs", hours=3), _story("e5", "evs", hours=4)]
    oil = [_story("o1", "oil", outlets=2), _story("o2", "oil"), _story("o3", "oil", hours=2)]
    metals = [_story("m1", "metals", outlets=3)]
    edition = _edition((EVS, evs), (OIL, oil), (METALS, metals))
    items, rest = brief.pick(edition, layout(edition))
    # most outlets first; the third EV storyline (3 outlets... none) waits: two a section at most
    assert [item.story.id for item in items] == ["e1", "e2", "m1", "o1"]
    assert [item.sector for item in items][:1] == ["EVs & Battery Technology"]
    by_sector = {s.sector.slug: s for s in rest}
    # no story twice, and the places the brief left are taken by the next stories
    assert [s.id for s in by_sector["evs"].stories] == ["e3", "e4"]
    assert [s.id for s in by_sector["evs"].more] == ["e5"]
    assert [s.id for s in by_sector["oil"].stories] == ["o2", "o3"]
    assert "metals" not in by_sector  # its one story is in the brief


def test_a_thin_story_never_opens_the_email_and_a_pin_comes_first() -> None:
    video = dataclasses.replace(
        _story("v", "evs", outlets=9), url="https://tv.example.com/video/plant-tour"
    )
    evs = [video, _story("e1", "evs", outlets=2), _story("e2", "evs")]
    edition = _edition((EVS, evs), size=2, pinned=("e2",))
    items, _ = brief.pick(edition, layout(edition))
    assert [item.story.id for item in items] == ["e2", "e1"]


def test_the_summary_takes_the_most_informative_sentences_of_every_outlet() -> None:
    lead = _story(
        "t",
        "evs",
        summary="LONDON, Nov 24 (Wire) - The carmaker made an announcement on Tuesday. "
        "Shares moved in early trade.",
    )
    figures = dataclasses.replace(
        _story("r1", "evs"),
        source="Daily Ledger",
        summary="Orion Cells will spend $2.4 billion on a battery plant in Ohio that will "
        "employ 1,800 people, chief executive Mara Lind said. The plant opens in 2028 and will "
        "supply Kestrel Motors and two other carmakers with up to 40 GWh of cells a year in "
        "its first phase, the company said in a statement issued after markets closed.",
    )
    cut = dataclasses.replace(
        _story("r2", "evs"),
        source="Wire Two",
        summary="Orion Cells will spend $2.4 billion on a battery plant in Ohio that will…",
    )
    story = dataclasses.replace(lead, reports=(figures, cut))
    text = brief.summary_of(story)
    assert text.startswith("Orion Cells will spend $2.4 billion on a battery plant in Ohio")
    assert "1,800 people" in text and "…" not in text
    assert "LONDON" not in text and "announcement" not in text
    assert len(text) <= brief.MAX_CHARS
    assert brief.sentences("LONDON, Nov 24 (Wire) - Prices rose. Then fell.") == [
        "Prices rose.",
        "Then fell.",
    ]
    # an abbreviation ends no sentence: "Castor Bros. Studios Inc.", "Gov. Silva"
    assert brief.sentences(
        "Gov. Ana Silva backs the bid for Castor Bros. Studios Inc. if it is fair. Talks start "
        "Monday."
    ) == [
        "Gov. Ana Silva backs the bid for Castor Bros. Studios Inc. if it is fair.",
        "Talks start Monday.",
    ]


def test_the_subject_is_a_headline_a_phone_shows_whole() -> None:
    assert brief.short_headline("Oil prices jump after strait closure - Reuters") == (
        "Oil prices jump after strait closure"
    )
    assert brief.short_headline("Miner weighs sale of copper unit, sources say") == (
        "Miner weighs sale of copper unit"
    )
    assert brief.short_headline("US-China talks - what comes next") == (
        "US-China talks - what comes next"  # not an outlet's name
    )
    long = "Ministers agree a review of the price cap on refined products from Ruritania"
    stories = [_story("a", "oil"), _story("b", "oil"), _story("c", "oil"), _story("d", "oil")]
    titles = [long, "Copper hits an 18-month high - Metals Wire", "Chipmaker lifts outlook", "X"]
    items = [
        brief.BriefItem(dataclasses.replace(s, title=t), "Oil & Gas", "")
        for s, t in zip(stories, titles, strict=True)
    ]
    headline, following = brief.subject_lines(items)
    assert headline == "Copper hits an 18-month high"  # the first that fits in 60 characters
    assert following == [long, "Chipmaker lifts outlook"]
    only_long = brief.subject_lines(items[:1])[0]
    assert len(only_long) <= brief.SUBJECT_CHARS and only_long.endswith("…")


def test_the_email_opens_with_the_brief_then_the_contents_then_the_sections() -> None:
    evs = [_story(f"e{n}", "evs", outlets=6 - n) for n in range(1, 5)]
    oil = [_story(f"o{n}", "oil", hours=n) for n in range(1, 4)]
    notes = (("e1", "Ohio's third cell plant this year: the state is now the region's hub."),)
    edition = _edition((EVS, evs), (OIL, oil), notes=notes)
    email = render.render_email(render.make_environment(), edition, layout(edition))
    html, text = email.html, email.text
    assert (
        html.index("Today&#39;s brief")
        < html.index("In this edition")
        < html.index(">EVs &amp; Battery Technology</h2>")
    )
    anchors = re.findall(r'href="#([\w-]+)"', html)
    assert anchors == ["evs", "oil"]
    assert all(f'id="{anchor}"' in html for anchor in anchors)
    assert "Why it matters:</strong> Ohio&#39;s third cell plant" in html
    assert "Why it matters: Ohio's third cell plant" in text
    for story in [*evs, *oil]:  # each story once, in the brief or its section
        assert html.count(f'href="{story.url}"') == 1, story.id
    assert email.subject == "Headline e1 about a plant in Ohio"
    assert email.preheader.startswith("Also: Headline e2 about a plant in Ohio;")
    assert "EVS" not in html  # section names as written, never upper-cased


def test_the_writers_intro_shows_only_over_the_storylines_it_is_about() -> None:
    evs = [_story(f"e{n}", "evs", outlets=6 - n) for n in range(1, 4)]
    oil = [_story("o1", "oil")]
    intro = "Ohio wins another cell plant, and oil waits on the cartel."
    edition = _edition((EVS, evs), (OIL, oil), intro=intro, intro_covers=("e1", "o1"))
    env = render.make_environment()
    assert intro in render.render_email(env, edition, layout(edition)).text
    oil_only = render.render_email(env, edition, layout(edition, ("oil",))).text
    assert intro not in oil_only  # this reader's brief does not hold e1


def test_story_days_are_shown_only_where_they_help() -> None:
    day = date(2026, 11, 25)
    at = datetime(2026, 11, 25, 5, 0, tzinfo=NOW.tzinfo)
    assert when(at, "Europe/London", day) == ""
    assert when(at - timedelta(days=1), "Europe/London", day) == "yesterday"
    assert when(at - timedelta(days=3), "Europe/London", day) == "Sun 22 Nov"
