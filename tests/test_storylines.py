"""Storylines: reworded reports of one developing story, across outlets and days, shown once in
the edition as its most informative report with the others under it; the biggest storyline
leads the edition; grouping by postings gives what comparing every pair gives."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.edition import render, storylines
from newsletter.edition.brief import split_top_story
from newsletter.edition.digest import build_edition, layout
from newsletter.models import EditionStatus, FeedSource, Sector, SectorFit, Story
from newsletter.store import Store
from newsletter.store.snapshot import edition_from_json, edition_to_json
from tests.conftest import NOW

FEED = FeedSource("Wire", "https://wire.example.com/feed", "https://wire.example.com/feed")
SECTORS = (
    Sector("sanctions", "Sanctions & Regulation"),
    Sector("business", "Business & Politics"),
    Sector("chips", "AI & Semiconductors"),
)

# (outlet, hours before the edition, sector, headline, teaser): one dispute over two days
DISPUTE = [
    (
        "Atlas Wire",
        30,
        "sanctions",
        "Sylvania Slaps 40% Tariffs On Freedonian Steel",
        "The government of Sylvania said the levy on steel from Freedonia starts next month, "
        "raising a quarrel over subsidies that has run since the spring.",
    ),
    (
        "Beacon Post",
        28,
        "business",
        "Freedonia vows to answer Sylvania tariffs on steel",
        "Freedonia's trade minister Anna Kovac said her country would answer within weeks and "
        "named farm goods and machinery as likely targets.",
    ),
    (
        "Coastline Times",
        26,
        "business",
        "Carmakers warn Sylvania tariffs on Freedonia steel cost jobs",
        "Assemblers that buy Freedonian sheet metal said costs would rise and that Sylvania "
        "plants could cut shifts before the summer.",
    ),
    (
        "Atlas Wire",
        20,
        "sanctions",
        "Sylvania and Freedonia trade talks collapse over tariffs",
        "Negotiators left the table in Geneva after Sylvania refused to suspend the levy while "
        "the two sides kept talking.",
    ),
    (
        "Delta Daily",
        8,
        "sanctions",
        "Freedonia sets counter-tariffs on Sylvania farm goods",
        "The cabinet in Freedonia approved duties of up to 35% on grain and dairy from Sylvania, "
        "mirroring the steel levy, from the eighth of next month.",
    ),
    (
        "Beacon Post",
        5,
        "business",
        "Markets shrug off Sylvania Freedonia tariff quarrel",
        "Shares in Sylvania and Freedonia closed little changed as traders bet the two capitals "
        "would reach a deal before the duties bite.",
    ),
    (
        "Coastline Times",
        2,
        "sanctions",
        "What exporters need to know about the Sylvania Freedonia tariffs",
        "A guide to the duties announced by Sylvania and Freedonia, the goods they cover and the "
        "dates they start.",
    ),
]
OTHERS = [
    (
        "Delta Daily",
        3,
        "chips",
        "Memory chip prices climb for a third month",
        "Contract prices for DRAM rose again as data-centre buyers placed large orders ahead of "
        "the new year, analysts at Trendline said.",
    ),
    (
        "Atlas Wire",
        4,
        "business",
        "Harbour operator reports record container volumes",
        "The port group said throughput rose 12% in the quarter on new routes to Asia and raised "
        "its forecast for the full year.",
    ),
    (
        "Beacon Post",
        6,
        "sanctions",
        "Regulator fines lender over anti-money-laundering lapses",
        "The watchdog said the bank failed to check thousands of transfers and ordered an outside "
        "review of its controls.",
    ),
]


def _stories(rows: list[tuple[str, int, str, str, str]], prefix: str) -> list[Story]:
    out = []
    for n, (outlet, hours, sector, title, teaser) in enumerate(rows):
        slug = outlet.lower().replace(" ", "")
        out.append(
            Story(
                id=f"{prefix}{n}",
                title=title,
                url=f"https://{slug}.example.com/{prefix}{n}",
                summary=teaser,
                source=outlet,
                published=NOW - timedelta(hours=hours),
                feed_url=f"feed:{outlet}",
                fits=(SectorFit(sector, 2.0),),
            )
        )
    return out


def test_seven_reports_of_one_dispute_are_one_storyline_that_leads_the_edition() -> None:
    dispute = _stories(DISPUTE, "d")
    chips = _stories(OTHERS, "o")
    # the chip story carried by three outlets: once the day's top story by outlets alone
    copies = [
        Story(
            f"c{n}",
            OTHERS[0][3],
            f"https://copy{n}.example.com/chips",
            OTHERS[0][4],
            f"Copy Outlet {n}",
            NOW - timedelta(hours=3),
            f"feed:copy{n}",
            fits=(SectorFit("chips", 2.0),),
        )
        for n in range(2)
    ]
    edition = build_edition(
        [*dispute, *chips, *copies],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        max_age=timedelta(hours=48),
    )
    sections = layout(edition)
    shown = [s for section in sections for s in (*section.stories, *section.more)]
    about = [s for s in shown if "Sylvania" in s.title or "Freedonia" in s.title]
    assert len(about) == 1  # the storyline once in the whole edition
    (line,) = about
    assert len(line.reports) == 6 and line.outlets == 4
    assert {r.url for r in line.reports} | {line.url} == {s.url for s in dispute}
    assert line.sectors[0] == "sanctions"  # most of its reports are filed there
    top, _ = split_top_story(sections)
    assert top is not None and top.id == line.id  # the biggest storyline leads


def test_separate_events_sharing_common_words_stay_apart() -> None:
    rows = [
        (
            "Atlas Wire",
            2,
            "business",
            "Nickel hits 18-month high on export curbs",
            "Prices of the metal rose in London after Indonesia tightened its export rules.",
        ),
        (
            "Beacon Post",
            3,
            "business",
            "Copper hits 18-month high on mine disruption",
            "A strike at a large mine in Chile halted output and tightened supply.",
        ),
        (
            "Delta Daily",
            4,
            "business",
            "North Sea operator approves gas field tie-back",
            "The subsea project will send gas to a terminal in Scotland from 2029.",
        ),
        (
            "Coastline Times",
            5,
            "business",
            "Black Sea wheat harvest beats forecasts",
            "Farmers around the Black Sea brought in more grain than expected.",
        ),
    ]
    stories = _stories(rows, "s")
    assert sorted(map(len, storylines.group(stories))) == [1, 1, 1, 1]


def test_the_outlet_a_news_search_appends_to_its_headlines_joins_no_two_events() -> None:
    """A news search ends each headline with its outlet ("- Reuters"): a part that ends three
    headlines or more names who published them, so two different events sharing it and one
    other word are two storylines, as they are without it."""
    rows = [
        (
            "Search",
            2,
            "business",
            "Zeta Mining cuts lithium forecast after flood - Reuters",
            "",
        ),
        ("Search", 3, "business", "Acme Corp raises lithium output in Nevada - Reuters", ""),
        ("Search", 4, "business", "Harbour group buys tug operator - Reuters", ""),
        ("Search", 5, "business", "Grain traders eye record harvest - Reuters", ""),
    ]
    assert sorted(map(len, storylines.group(_stories(rows, "r")))) == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (  # one name of two words is one shared name, not two words
            ("Wall Street closes lower as oil jumps", "Stocks on Wall Street fell as crude rose."),
            ("Wall Street braces for jobs data", "Traders on Wall Street await payrolls."),
        ),
        (  # a word of two different names is no shared name
            (
                "Space station rocket launch reaches orbit",
                "The European Space Agency filmed the launch from orbit.",
            ),
            (
                "Air base hosts space launch review",
                "The panel checked the Evolved Launch Vehicle programme.",
            ),
        ),
        (  # "Argentina's Milei" names two, both shared: one storyline
            (
                "Milei courts investors for Argentina bonds",
                "The president of Argentina met fund managers in New York.",
            ),
            ("Argentina bonds rally as Milei wins vote", "Argentina's Milei won a key vote."),
        ),
        (  # a noun made with "-ization" shares its root word: "dollarization" is "dollar"
            ("Sylvania weighs dollarization", "Sylvania's Reyes wants to adopt the US currency."),
            ("Can Sylvania live on the dollar?", "President Reyes pitched the plan to banks."),
        ),
        (  # a name's last word is its head: "Anna Kovac" is named by "Kovac"
            ("Kovac Rejects Steel Levy", "Trade minister Anna Kovac said the levy must go."),
            ("Steel Levy Stays Despite Kovac Plea", "A plea from Minister Anna Kovac failed."),
        ),
    ],
)
def test_names_count_once_and_whole(one: tuple[str, str], other: tuple[str, str]) -> None:
    rows = [("Atlas Wire", 2, "business", *one), ("Beacon Post", 3, "business", *other)]
    together = any(name in one[0] for name in ("Argentina", "Kovac", "Sylvania"))
    assert len(storylines.group(_stories(rows, "n"))) == (1 if together else 2)


def test_one_rare_word_and_two_more_names_in_both_leads_make_one_storyline() -> None:
    """Headlines that share one uncommon word are one storyline when both leads name two more
    actors or places: a governor's view of a lawsuit and the talks to settle it."""
    rows = [
        (
            "Atlas Wire",
            20,
            "sanctions",
            "Governor Prefers Harbourline Settlement 'If It's Fair'",
            "Ruritania Governor Ana Silva said she would prefer a settlement of the state's "
            "lawsuit against Harbourline Media Corp's purchase of Castor Studios Inc.",
        ),
        (
            "Beacon Post",
            4,
            "business",
            "Harbourline and Ruritania to hold early talks on Castor deal, paper reports",
            "Harbourline and Ruritania officials meet on Monday to discuss settling the state's "
            "lawsuit over Harbourline's purchase of Castor Studios, a newspaper reported.",
        ),
    ]
    assert len(storylines.group(_stories(rows, "h"))) == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (  # one company, two events: its chief is one name, not two
            (
                "Voltco recalls cells sold in Ostland",
                "Voltco chief Mara Lind said the faulty cells came from one line.",
            ),
            (
                "Voltco opens a cell plant",
                "Voltco chief Mara Lind opened the plant with the mayor.",
            ),
        ),
        (  # two events of one war: the leads name its places, no headline names them
            (
                "Gallia agrees to speed air defence deliveries to Ostland",
                "Ostland's president said Gallia would send the systems to Kovgrad within weeks "
                "as Ruritania kept up its strikes.",
            ),
            (
                "Ruritanian leader says Ostland opened a can of worms with refinery strikes",
                "The leader said Kovgrad had crossed a line and that Ruritania would answer.",
            ),
        ),
        (  # one big name's tariffs on two countries: each headline names its own
            (
                "Reyes Hits Ostland With 50% Tariffs as Lind Vows to Retaliate",
                "Ostland's prime minister Ana Lind said her government would answer the levy.",
            ),
            (
                "Marsh Calls Reyes to Resume Talks Over Tariffs on Gallia",
                "Gallia's President Tom Marsh called Reyes on Friday to reopen talks on levies.",
            ),
        ),
        (  # the same dateline names no one: "NEW YORK/WASHINGTON, Aug 21 :"
            (
                "Regulator charges banker with insider trading",
                "NEW YORK/WASHINGTON, Aug 21 : The regulator said he tipped a friend off.",
            ),
            (
                "Drone maker to appoint ex-banker to its board",
                "NEW YORK/WASHINGTON, Aug 21 : The board will also gain a retired officer.",
            ),
        ),
    ],
)
def test_reports_naming_too_little_in_common_stay_two_storylines(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    rows = [("Atlas Wire", 2, "business", *one), ("Beacon Post", 3, "business", *other)]
    assert len(storylines.group(_stories(rows, "v"))) == 2


def test_two_of_the_days_big_names_beside_a_rare_word_make_one_storyline() -> None:
    """On a day when most headlines name Reyes and Sylvania, two reports of his economic
    pressure on it are one storyline (two common names and one rare word); a report sharing
    one of the names and the rare words is not."""
    topics = ["port", "army", "envoy", "border", "talks", "vote", "bank", "drone", "ship"]
    topics += ["grain", "court", "navy", "bonds", "embassy"]
    day = [
        (
            "Atlas Wire",
            1,
            "business",
            f"Traders in the city watch Reyes and Sylvania on {topic} costs",
            "",
        )
        for topic in topics
    ]
    rows = [
        *day,
        (
            "Beacon Post",
            2,
            "business",
            "Reyes plans economic siege of Sylvania",
            "President Reyes will cut trade with Sylvania.",
        ),
        (
            "Delta Daily",
            3,
            "business",
            "Reyes wants more economic pressure on Sylvania",
            "Advisers to President Reyes listed ways to squeeze Sylvania.",
        ),
        (
            "Coastline Times",
            4,
            "business",
            "Sylvania braces for economic pressure",
            "Traders in Sylvania expect a hard winter.",
        ),
    ]
    stories = _stories(rows, "b")
    words = storylines._Words(stories)
    assert {"reyes", "sylvania"}.isdisjoint(words.uncommon())  # the day's common names
    groups = [sorted(stories[i].title for i in g) for g in storylines.group(stories) if len(g) > 1]
    assert groups == [sorted(row[3] for row in rows[-3:-1])]
    assert storylines.group(stories) == storylines.brute_force(stories)


def test_reports_days_apart_beyond_the_window_are_two_storylines() -> None:
    first, second = _stories(DISPUTE[:2], "w")
    late = Story(
        second.id,
        second.title,
        second.url,
        second.summary,
        second.source,
        first.published + storylines.WINDOW + timedelta(hours=1),
        second.feed_url,
        fits=second.fits,
    )
    assert len(storylines.group([first, late])) == 2
    assert len(storylines.group([first, second])) == 1


def _name(line: int, kind: int) -> str:
    """A made-up name of letters only, one per storyline and kind: "Bakodefi"."""
    letters = "bcdfghklmnprstvz"
    digits = f"{line:05d}{kind}"
    return "".join(letters[int(d)] + "aeiou"[int(d) % 5] for d in digits).capitalize()


def _generated(n: int, seed: int, *, big_names: bool = False) -> list[Story]:
    """Storylines of a few named actors each, among stories of a small shared vocabulary (with
    ``big_names``, half of them also name the day's two big names, "Reyes" and "Sylvania")."""
    rng = random.Random(seed)
    common = [
        "prices",
        "shares",
        "output",
        "deal",
        "plan",
        "talks",
        "market",
        "rises",
        "falls",
        "record",
    ]
    stories = []
    for i in range(n):
        line = rng.randrange(max(1, n // 4))
        actors = [_name(line, kind) for kind in range(3)]
        one, two = rng.sample(actors, 2)
        first, second, third = rng.sample(common, 3)
        words = [one, first, second, two, third]  # two names, apart
        if big_names and rng.random() < 0.5:
            words[2:2] = ["as", "Reyes", "and", "Sylvania", "weigh", "costs"]
        teaser = f"Officials said {' and '.join(actors)} were in talks on {rng.choice(common)}."
        stories.append(
            Story(
                f"g{i}",
                " ".join(words),
                f"https://g.example.com/{i}",
                teaser,
                "Wire",
                NOW - timedelta(hours=rng.randrange(96)),
                fits=(SectorFit("business", 2.0),),
            )
        )
    return stories


@pytest.mark.parametrize(
    ("size", "seed", "big_names"),
    [(60, 1, False), (400, 2, False), (1500, 3, False), (400, 4, True), (1500, 5, True)],
)
def test_grouping_by_postings_is_grouping_by_every_pair(
    size: int, seed: int, big_names: bool
) -> None:
    stories = _generated(size, seed, big_names=big_names)
    groups = storylines.group(stories)
    assert groups == storylines.brute_force(stories)
    assert len(groups) < 0.8 * size  # storylines were found, not only single stories


def test_a_storyline_shows_its_other_reports_and_keeps_them_when_frozen() -> None:
    edition = build_edition(
        _stories(DISPUTE, "d"), SECTORS, publication="P", edition_date=NOW.date(), now=NOW
    )
    assert edition_from_json(edition_to_json(edition)) == edition  # the frozen copy has them
    sections = layout(edition)
    settings = dataclasses.replace(
        render.RenderSettings.from_config(), site_url="https://example.com"
    )
    email = render.render_email(render.make_environment(), edition, sections, settings=settings)
    (line,) = [s for section in sections for s in section.stories]
    assert "6 more reports:" in email.html
    outlets = {r.source for r in line.reports}
    assert len(outlets) == 4  # each outlet linked once, at its first (latest) report
    for source in outlets:
        first = next(r for r in line.reports if r.source == source)
        assert email.html.count(f">{source}</a>") == 1 and f'href="{first.url}"' in email.html
    for report in line.reports:
        assert f"+ {report.source}: {report.url}" in email.text


def test_a_storyline_sent_yesterday_returns_only_with_a_new_development(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    yesterday = NOW - timedelta(days=1)
    reports = _stories(DISPUTE[:4], "d")
    reports = [dataclasses.replace(s, published=s.published - timedelta(days=1)) for s in reports]
    store.feeds.sync_feeds([FEED])
    store.feeds.record_fetched(  # the stories are in the store, as collected
        FEED,
        [*reports, *_stories(DISPUTE[4:5], "n")],
        now=NOW,
        status=200,
        etag=None,
        last_modified=None,
    )
    sent = build_edition(
        reports, SECTORS, publication="P", edition_date=yesterday.date(), now=yesterday
    )
    store.editions.save_edition(sent, status=EditionStatus.SENT, now=yesterday)
    seen = store.editions.sent_before(NOW.date())
    assert {s.id for s in reports} <= seen.ids  # the storyline's other reports went out too
    retold = Story(
        "r1",
        "Sylvania slaps 40% tariffs on Freedonian steel imports",
        "https://echo.example.com/r1",
        DISPUTE[0][4],
        "Echo News",
        NOW - timedelta(hours=20),
        "feed:Echo",
        fits=(SectorFit("sanctions", 2.0),),
    )
    development = _stories(DISPUTE[4:5], "n")  # Freedonia's counter-tariffs: new
    today = [*reports, retold]
    quiet = build_edition(
        today, SECTORS, publication="P", edition_date=NOW.date(), now=NOW, seen=seen
    )
    assert not [s for section in quiet.sections for s in section.stories]  # nothing new
    edition = build_edition(
        [*today, *development],
        SECTORS,
        publication="P",
        edition_date=NOW.date(),
        now=NOW,
        seen=seen,
    )
    (shown,) = [s for section in edition.sections for s in section.stories]
    assert shown.id == "n0" and shown.update and shown.reports == ()
    email = render.render_email(
        render.make_environment(),
        edition,
        layout(edition),
        settings=dataclasses.replace(
            render.RenderSettings.from_config(), site_url="https://example.com"
        ),
    )
    assert f"Update: {shown.title}" in email.text and "Update:</span>" in email.html
    kept = store.editions.storyline_of("d0")
    assert kept is not None and kept.first_story_id == "d0" and kept.latest_story_id == "d3"
    assert kept.outlets == 3 and kept.last_edition_id is not None
    store.editions.save_edition(edition, status=EditionStatus.SENT, now=NOW)  # it goes out
    again = store.editions.storyline_of("n0")
    assert again is not None and again.id == kept.id  # the same storyline, carried on
    assert (again.first_story_id, again.latest_story_id) == ("d0", "n0")
    assert again.last_edition_id != kept.last_edition_id
    store.close()
