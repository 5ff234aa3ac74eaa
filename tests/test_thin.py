"""Thin items (live blogs, opinion, no teaser) may fill "more" but never lead a section,
whatever their rank; videos (by their teaser too), podcasts, show promos, galleries, newsletter
promos, ceremonies, investment pitches and market soundbites are never shown at all."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from newsletter.edition.digest import build_edition, layout
from newsletter.edition.thin import _TITLE_KINDS, thin_reason
from newsletter.models import Overrides, Sector, SectorFit, Story
from tests.conftest import NOW, SHARED

PITCH = "an investment pitch"
FOOTAGE_TEASER = "The agency has released timelapse video of the cargo launch, from the station."
TEASER = "The company said the new line starts next spring and employs four hundred people."


def _story(title: str, url: str = "https://wire.example.com/2026/11/25/item", **more: str) -> Story:
    story = Story("x", title, url, TEASER, "Wire", NOW - timedelta(hours=1))
    return dataclasses.replace(story, fits=(SectorFit("evs", 2.0),), **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("title", "url", "source", "summary", "reason"),
    [
        ("Cell plant tour", "https://tv.example.com/video/cell-plant-tour", "", "", "a video"),
        ("WATCH: The new pack line", "", "", "", "a video"),
        ("Pack line b-roll", "", "", "", "a video"),
        ("Launch of a cargo rocket, a time-lapse", "", "", "", "a video"),
        ("Charging: the week ahead", "https://x.example.com/podcasts/ep-12", "", "", "a podcast"),
        ("Charging costs, explained | Podcast", "", "", "", "a podcast"),
        ("Charging costs, explained", "", "Grid Talk Podcast", "", "a podcast"),
        ("Markets end the week higher | Market Hour 3/14/2026", "", "", "", "a show promo"),
        (
            "Inside the gigafactory",
            "https://x.example.com/in-pictures/gigafactory",
            "",
            "",
            "a photo gallery",
        ),
        ("Photos of the week: battery day", "", "", "", "a photo gallery"),
        (
            "Strike at the cell plant",
            "https://x.example.com/live/2026/11/25/strike",
            "",
            "",
            "a live blog",
        ),
        ("Live updates: strike at the cell plant", "", "", "", "a live blog"),
        ("Sign up for our battery briefing", "", "", "", "a newsletter promo"),
        (
            "A different way to think about cells",
            "https://x.example.com/2026/11/25/briefing/cells.html",
            "",
            "",
            "a newsletter promo",
        ),
        ("Families of fallen airmen honored at a base ceremony", "", "", "", "a ceremony"),
        ("What Memorial Day means to one depot's crews", "", "", "", "a ceremony"),
        ("Celebration of life planned for a retired chief", "", "", "", "a ceremony"),
        ("Duchess pays tribute to the war dead at a harbour", "", "", "", "a ceremony"),
        (  # a ceremony in a commentaries folder is a ceremony: never shown
            "Chaplain reflects on mission this Memorial Day",
            "https://x.example.com/commentaries/chaplain",
            "",
            "",
            "a ceremony",
        ),
        (
            "Why the cell plant matters",
            "https://x.example.com/opinion/2026/11/25/cell-plant",
            "",
            "",
            "an opinion piece",
        ),
        ("Opinion: the cell plant is a bad bet", "", "", "", "an opinion piece"),
        ("A chaplain's week at the depot", "", "Base News Commentaries", "", "an opinion piece"),
        ("The Week in Batteries: a busy Friday", "", "", "", "a weekly roundup"),
        ("Battery makers: the week ahead", "", "", "", "a weekly roundup"),
        ("Trending stocks this week as battery makers slip", "", "", "", "a weekly roundup"),
        ("Catalyst Watch: eyes on cell makers' earnings", "", "", "", "a weekly roundup"),
        ("Five things to know before the market opens", "", "", "", "a weekly roundup"),
        ("Market Talk: cell makers 'could rally' after the recall", "", "", "", "a soundbite"),
        ("Market Talk - Battery shares look stretched", "", "", "", "a soundbite"),
        # one voice's view, hedged, with no decision or figure behind it
        ("Cell prices could ease next year - Cellco's chief says", "", "", "", "a soundbite"),
        ("Gridco sees price swings 'brief', CEO says - Wire", "", "", "", "a soundbite"),
        ("Senator Urges Ministry to Restore Depot Drills", "", "", "", "a soundbite"),
        ("Ministry says two states share interest in calm markets", "", "", "", "a soundbite"),
        # a routine move below the top of a company: not news for an industry's reader
        (
            "Cellco's Chief Communications Executive to Leave Company",
            "",
            "",
            "",
            "a personnel move",
        ),
        (
            "Drone maker to appoint an ex-officer and an ex-banker to its board",
            "",
            "",
            "",
            "a personnel move",
        ),
        ("Factbox: the largest cell-plant recalls", "", "", "", "a factbox"),
        ("Biggest battery recalls in history - Wire", "", "", "", "a factbox"),
        ("Timeline: a cell maker's year of recalls", "", "", "", "a factbox"),
        (
            "Cargo launch from the station's point of view",
            "",
            "",
            FOOTAGE_TEASER,
            "a video (so its teaser says)",
        ),
        ("Cellco: The Most Important Battery Compounder Of The Decade", "", "", "", PITCH),
        ("Top 25 Dividend Growth Stocks For December", "", "", "", PITCH),
        ("Three lithium stocks to buy before the spring", "", "", "", PITCH),
        ("Is Cellco still a buy after the recall?", "", "", "", PITCH),
        ("VOLT: A High-Conviction Battery ETF", "", "", "", PITCH),
        (  # an investor site's contributors' folder, whatever the headline
            "Cellco's moment is here",
            "https://seekingalpha.com/article/1234-cellco-moment?source=feed",
            "",
            "",
            PITCH,
        ),
        (
            "Cellco plans a cell plant",
            "https://www.fool.com/investing/2026/11/25/cellco/",
            "",
            "",
            PITCH,
        ),
        ("Cell plant opens in Ohio", "", "", "Cell plant opens in Ohio", "no teaser"),
        ("Cell plant opens in Ohio", "", "", "Read more.", "no teaser"),
    ],
)
def test_thin_items_are_recognised(
    title: str, url: str, source: str, summary: str, reason: str
) -> None:
    story = _story(title, url or "https://wire.example.com/2026/11/25/item")
    story = dataclasses.replace(story, source=source or "Wire", summary=summary or TEASER)
    assert thin_reason(story) == reason


@pytest.mark.parametrize(
    "title",
    [
        "Podcast platform owner says advertising revenue rose a fifth",
        "Carmaker to livestream its battery day as shares climb",
        "Video-game chip demand lifts foundry orders",
        "Chaplain's charity buys an electric minibus",
        "Ceremonial mace maker wins a defence order",
        "Cellco to sell its cell plant to a rival",  # a sale is news, not a pitch
        "Investors buy the bonds of a battery maker",
        "Dividend cut at Cellco as the recall widens",
        "Weekly jobless claims fall as cell plants hire",
        "Week-long strike shuts a cell plant",
        "Cell maker posts biggest loss in history",  # news that names a record
        "Timeline slips for a cell plant as the recall widens",
        # what someone says that is news: a decision, a figure, a finding
        "Ministry says oil from the reserve reaches the market next week",
        "Ruritania, Ostland ready to act against currency swings, ministers say",
        "Cellco's chief says the plant could cut 2,000 jobs",
        "Analyst's Study Says Automation Weighs On Pay Without Cutting Jobs",
        "Cellco sells its plant to Voltco, sources say",
        # the top of a company changing is news
        "Cellco CEO to step down after the recall",
        "Cellco names a new chairman",
        "Cellco's finance chief resigns",
        "Voltco board approves a $2 billion buyback",
    ],
)
def test_stories_about_such_things_are_not_thin(title: str) -> None:
    assert thin_reason(_story(title)) == ""


def test_an_investor_sites_news_items_are_news() -> None:
    news = _story("Cellco shares slide after recall", "https://seekingalpha.com/news/987-cellco")
    assert thin_reason(news) == ""


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Top 25 Dividend Growth Stocks For December", TEASER),
        ("Cell makers: the week ahead", TEASER),
        ("Market Talk: cell makers 'could rally' after the recall", TEASER),
        ("Cell prices could ease next year - Cellco's chief says", TEASER),
        ("Cellco's Chief Communications Executive to Leave Company", TEASER),
        ("Biggest battery recalls in history", TEASER),
        ("Cargo launch from the station's point of view", FOOTAGE_TEASER),  # footage by its teaser
    ],
)
def test_pitches_roundups_soundbites_and_footage_are_shown_nowhere(
    title: str, summary: str
) -> None:
    hidden = dataclasses.replace(_story(title), id="hidden", summary=summary)
    plain = _story("Cell plant opens in Ohio", "https://wire.example.com/2026/11/25/plant")
    edition = build_edition(
        [hidden, dataclasses.replace(plain, id="plain")],
        [Sector("evs", "EVs")],
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
    )
    (section,) = layout(edition)
    assert [s.id for s in (*section.stories, *section.more)] == ["plain"]


def test_a_thin_story_never_leads_even_when_most_outlets_carry_it() -> None:
    video = dataclasses.replace(
        _story("Cell plant tour", "https://tv.example.com/video/tour"),
        id="video",
        also_in=("Outlet A", "Outlet B", "Outlet C"),
    )
    plain = _story("Cell plant opens in Ohio", "https://wire.example.com/2026/11/25/plant")
    plain = dataclasses.replace(plain, id="plain")
    bare = _story("Pack prices fall again", "https://wire.example.com/2026/11/25/packs")
    bare = dataclasses.replace(bare, id="bare", summary="")
    edition = build_edition(
        [video, plain, bare],
        [Sector("evs", "EVs")],
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
    )
    (section,) = layout(edition)
    assert [s.id for s in section.stories] == ["plain"]
    assert {s.id for s in section.more} == {"bare"}  # a bare story may fill "more"


def test_videos_podcasts_and_ceremonies_are_shown_nowhere_not_even_as_other_reports() -> None:
    """A video of the day's storyline neither leads, fills "more" nor sits under the storyline
    as one of its reports; a pinned one is the editor's choice and shows."""
    text = "Carmaker opens a cell plant in Ohio"
    report = _story(text, "https://wire.example.com/2026/11/25/plant")
    video = _story(text, "https://tv.example.com/video/plant")
    ceremony = _story("Cell plant workers honored at a ribbon ceremony")
    stories = [
        dataclasses.replace(report, id="report", source="Wire"),
        dataclasses.replace(video, id="video", source="Outlet TV"),
        dataclasses.replace(ceremony, id="ceremony", source="Plant News"),
    ]
    sectors = [Sector("evs", "EVs")]
    edition = build_edition(stories, sectors, publication="P", edition_date=NOW.date(), now=NOW)
    shown = [
        s.id
        for section in layout(edition)
        for lead in (*section.stories, *section.more)
        for s in (lead, *lead.reports)
    ]
    assert shown == ["report"]
    assert edition.sections[0].stories[0].also_in == ()  # the video's outlet is not named
    pinned = build_edition(
        stories,
        sectors,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        overrides=Overrides(pin=("ceremony",)),
    )
    assert "ceremony" in [s.id for section in layout(pinned) for s in section.stories]


# one headline of our own for each headline pattern, in the order of the patterns
PATTERN_EXAMPLES = [
    "Video: the new pack line",
    "Pack line b-roll",
    "Podcast: charging costs, explained",
    "Charging costs, explained - Podcast",
    "Grid Talk, episode 12: charging costs",
    "In pictures: inside the gigafactory",
    "Photos of the week: cell plants",
    "Live updates: the battery recall",
    "Sign up for our battery briefing",
    "Opinion: the grid needs storage",
    "Cell makers: the week ahead",
    "Cellco honoured at a veterans day ceremony",
    "Market Talk: cell makers 'could rally'",
    "Cell prices could ease next year - Cellco's chief says",
    "Factbox: the biggest battery recalls",
    "Cellco's Chief Communications Executive to Leave Company",
    "Markets end the week higher | Market Hour 3/14/2026",
    "Three lithium stocks to buy before the spring",
]


def _headlines() -> list[str]:
    """Our own headlines, and the labelled real ones when ../shared is beside the project."""
    labelled = SHARED / "corpus" / "sector-dev.jsonl"
    lines = labelled.read_text(encoding="utf-8").splitlines() if labelled.is_file() else []
    return [*PATTERN_EXAMPLES, *(json.loads(line)["title"] for line in lines if line.strip())]


def test_a_headline_pattern_is_tried_only_where_it_can_match() -> None:
    """A headline pattern is tried only on headlines holding one of its words (a first test,
    asked of every story of a window): every headline it matches holds one of them."""
    assert len(PATTERN_EXAMPLES) == len(_TITLE_KINDS)
    for (pattern, kind, _), title in zip(_TITLE_KINDS, PATTERN_EXAMPLES, strict=True):
        assert pattern.search(title), (kind, title)
        assert thin_reason(_story(title)) == kind
    for title in _headlines():
        for pattern, kind, words in _TITLE_KINDS:
            if pattern.search(title):
                assert any(word in title.lower() for word in words), (kind, title)
