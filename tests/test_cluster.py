"""Clustering: the index finds what comparing every pair finds, and the same event merges."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import pytest

from newsletter.edition.brief import split_top_story
from newsletter.edition.cluster import brute_force, cluster, cluster_ids
from newsletter.edition.digest import build_edition, layout
from newsletter.edition.filters import outlets
from newsletter.models import Sector, SectorFit, Story
from tests.conftest import NOW

SECTORS = (Sector("evs", "EVs"), Sector("oil", "Oil"))
WORDS = [
    "market",
    "price",
    "output",
    "plant",
    "deal",
    "plan",
    "talks",
    "supply",
    "demand",
    "rise",
    "fall",
    "cut",
    "boost",
    "shares",
    "group",
    "firm",
    "unit",
    "project",
    "contract",
    "order",
    "growth",
    "profit",
    "sales",
    "exports",
    "imports",
    "week",
    "report",
    "chief",
]


def _story(sid: str, title: str, *, source: str, summary: str = "", hours: float = 1) -> Story:
    return Story(
        id=sid,
        title=title,
        url=f"https://{source.lower().replace(' ', '')}.example.com/{sid}",
        summary=summary,
        source=source,
        published=NOW - timedelta(hours=hours),
        feed_url=f"feed:{source}",
        fits=(SectorFit("evs", 2.0),),
    )


def _generated(n: int, seed: int) -> list[Story]:
    """Stories with known duplicates: some headlines repeated with small changes by other feeds,
    some events reworded with the same rare names, and many unrelated stories."""
    rng = random.Random(seed)
    syllables = [
        "ka",
        "lo",
        "mi",
        "ra",
        "ten",
        "vos",
        "ul",
        "bri",
        "cor",
        "dan",
        "esh",
        "fil",
        "gor",
        "hal",
    ]
    names = sorted({"".join(rng.choices(syllables, k=4)) for _ in range(n)})
    stories: list[Story] = []
    while len(stories) < n:
        base = [*rng.sample(WORDS, 5), rng.choice(names), rng.choice(names)]
        if rng.random() < 0.5:  # a figure, which near-identical copies repeat
            base.append(str(rng.randint(1, 30)))
        title = " ".join(base)
        sid = f"s{len(stories)}"
        stories.append(_story(sid, title, source=f"Feed {rng.randrange(40)}"))
        roll = rng.random()
        if roll < 0.15:  # a copy with one word changed, from another feed
            copy = list(base)
            copy[rng.randrange(5)] = rng.choice(WORDS)
            stories.append(_story(sid + "c", " ".join(copy), source=f"Feed {rng.randrange(40)}"))
        elif roll < 0.3:  # the same event in other words: the two rare names again
            other = [*rng.sample(WORDS, 3), base[5], base[6]]
            lead = f"{base[5]} and {base[6]} " + " ".join(rng.sample(WORDS, 4))
            stories.append(
                _story(sid + "e", " ".join(other), source=f"Feed {rng.randrange(40)}", summary=lead)
            )
    return stories[:n]


def _partition(groups: list[tuple[Story, ...]]) -> set[frozenset[str]]:
    return {frozenset(s.id for s in group) for group in groups}


@pytest.mark.parametrize(
    ("size", "seed"), [(500, 5), pytest.param(2000, 7, marks=pytest.mark.slow)]
)
def test_the_index_finds_the_same_clusters_as_comparing_every_pair(size: int, seed: int) -> None:
    stories = _generated(size, seed=seed)
    fast = _partition(cluster(stories))
    assert fast == _partition(brute_force(stories))
    assert len(fast) < len(stories) - size // 13  # the known duplicates were found


def _small_vocabulary(n: int, seed: int) -> list[Story]:
    """Headlines of six to ten words drawn from WORDS alone (no names), from 500 feeds; every
    tenth one repeated word for word by another feed."""
    rng = random.Random(seed)
    stories: list[Story] = []
    while len(stories) < n:
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 10)))
        sid = f"v{len(stories)}"
        stories.append(_story(sid, title, source=f"Feed {rng.randrange(500)}"))
        if rng.random() < 0.1:
            stories.append(_story(sid + "c", title, source=f"Feed {rng.randrange(500)}"))
    return stories[:n]


def _candidates(stories: list[Story]) -> int:
    from newsletter.edition import cluster as clustering

    docs = clustering._docs(stories)
    rarity = clustering._Rarity(docs, [s.feed_url for s in stories])
    headline = clustering._headline_candidates(docs, rarity)
    return len(headline | clustering._rare_candidates(docs, rarity))


def test_candidates_grow_with_the_stories_not_their_pairs_on_a_small_vocabulary() -> None:
    # every word is common: the index must not pair every headline with every other (what
    # made 39,000 such stories take 110 s), yet a headline repeated word for word still merges
    small, large = _small_vocabulary(1_500, seed=3), _small_vocabulary(6_000, seed=3)
    assert _candidates(large) <= 6 * max(1, _candidates(small))  # four times the stories
    assert _candidates(large) < len(large)
    groups = _partition(cluster(large))
    repeated = {s.id for s in large if s.id.endswith("c")}
    assert repeated and all(
        any(sid in group and sid[:-1] in group for group in groups)
        for sid in repeated
        if sid[:-1] in {s.id for s in large}
    )


def test_a_changed_figure_keeps_two_headlines_apart() -> None:
    a = _story("a", "Lithium plant output rises 12 percent in Nevada", source="Alpha")
    b = _story("b", "Lithium plant output rises 15 percent in Nevada", source="Beta")
    c = _story("c", "Lithium plant output rises 12 percent in Nevada state", source="Gamma")
    groups = _partition(cluster([a, b, c]))
    assert groups == _partition(brute_force([a, b, c])) == {frozenset("ac"), frozenset("b")}


def test_stored_clusters_are_kept_and_only_new_stories_compared() -> None:
    stories = _generated(600, seed=11)
    first = cluster(stories)
    ids = cluster_ids(first)
    assert set(ids) == {s.id for s in stories}  # every story gets its cluster's id
    assert all(len({ids[s.id] for s in group}) == 1 for group in first)
    assert all(ids[s.id] == min(x.id for x in group) for group in first for s in group)
    stored = [dataclasses.replace(s, cluster=ids[s.id]) for s in stories]
    assert _partition(cluster(stored)) == _partition(first)  # nothing compared, same result
    # two stored stories are never compared again: the same headline stays in two clusters
    one = dataclasses.replace(_story("x1", "Ore carrier fleet grows", source="A"), cluster="x1")
    two = dataclasses.replace(_story("x2", "Ore carrier fleet grows", source="B"), cluster="x2")
    assert _partition(cluster([one, two])) == {frozenset({"x1"}), frozenset({"x2"})}
    # a new story joins its stored twin, and one that matches both joins the two clusters
    new = _story("x3", "Ore carrier fleet grows", source="C")
    joined = cluster([one, two, new])
    assert _partition(joined) == {frozenset({"x1", "x2", "x3"})}
    assert cluster_ids(joined) == {"x2": "x1", "x3": "x1"}


def test_reworded_reports_of_one_event_merge() -> None:
    stories = [
        _story(
            "a",
            "Tesla and others begin record vehicle recall in China",
            source="Alpha",
            summary="China will ban concealed door handles, a design popularised by Tesla.",
        ),
        _story(
            "b",
            "China launches biggest ever auto recall campaign over door handle safety",
            source="Beta",
            summary="Eleven carmakers, Tesla among them, recalled vehicles over door handles.",
        ),
        _story("c", "Copper output falls in Chile", source="Gamma"),
        _story("d", "Oil tanker rates climb in Asia", source="Delta"),
        _story("e", "Wind auction awards new capacity", source="Eps"),
        _story("f", "Shipyard wins frigate contract", source="Zeta"),
    ]
    groups = _partition(cluster(stories))
    assert frozenset({"a", "b"}) in groups and len(groups) == 5


def test_one_event_from_five_outlets_is_the_top_story_naming_the_others() -> None:
    outlets_ = ["Alpha Wire", "Beta News", "Gamma Daily", "Delta Post", "Epsilon Times"]
    event = [
        ("Zentara Motors recalls 12,000 Aurivan electric vans over brake software", "recall"),
        ("Aurivan van recall: Zentara Motors fixes brake software on 12,000 vehicles", "fix"),
        ("Zentara Motors to update brake software in Aurivan vans", "update"),
        ("Brake fault forces Zentara Motors to recall Aurivan electric vans", "fault"),
    ]
    stories = []
    for o, outlet in enumerate(outlets_):
        for e, (title, word) in enumerate(event):
            lead = f"Zentara Motors said the Aurivan brake software {word} covers 12,000 vans."
            stories.append(_story(f"ev{o}{e}", title, source=outlet, summary=lead, hours=3 + e))
    singles = [
        _story(f"s{i}", f"{WORDS[i % 26]} {WORDS[(i * 7 + 3) % 26]} at site{i}", source=f"S{i}")
        for i in range(30)
    ]
    stories += singles
    assert len(stories) == 50
    edition = build_edition(
        stories, SECTORS, publication="P", edition_date=NOW.date(), now=NOW, per_sector=5
    )
    top, _ = split_top_story(layout(edition))
    assert top is not None and "Zentara" in top.title
    assert sorted((top.source, *top.also_in)) == sorted(outlets_)
    assert outlets(top.also_in) == ", ".join(top.also_in[:3]) + " +1 more"
    carried = [s for section in edition.sections for s in section.stories if "Zentara" in s.title]
    assert len(carried) == 1  # the event once, not again in its own section


TEASER = "The report gives the figures, the people involved and what comes next."


def test_one_storyline_is_shown_once_with_its_other_reports() -> None:
    titles = [
        "Ruritania steel mills cut 2,000 jobs as exports slump",
        "Court in Ruritania blocks the sale of a steel maker",
        "Ruritania steel output hits a ten-year low",
        "Steel buyers in Ruritania turn to cheaper rivals",
        "Wind auction awards new capacity",
        "Copper output falls in Chile",
        "Oil tanker rates climb in Asia",
        "Battery plant opens in Ohio",
    ]
    stories = [
        _story(f"t{i}", t, source=f"Outlet {i}", summary=TEASER, hours=1 + i)
        for i, t in enumerate(titles)
    ]
    edition = build_edition(
        stories, SECTORS, publication="P", edition_date=NOW.date(), now=NOW, per_sector=6
    )
    (section,) = layout(edition)
    assert len(cluster(stories)) == len(stories)  # four stories, not four reports of one ...
    (steel,) = [s for s in (*section.stories, *section.more) if "Ruritania" in s.title]
    assert steel in section.stories  # ... of one storyline, shown once, the others under it
    assert {r.title for r in steel.reports} == set(titles[:4]) - {steel.title}
    assert steel.outlets == 4 and section.stories[0] is steel  # the most outlets: it leads
    assert set(titles[4:]) <= {s.title for s in section.stories}  # the other stories all lead


def test_weak_stories_fill_more_but_never_lead() -> None:
    sure = _story("sure", "Battery plant opens in Ohio", source="A", summary=TEASER)
    weak = dataclasses.replace(
        _story("weak", "A van was shown", source="B"), fits=(SectorFit("evs", 0.6),)
    )
    edition = build_edition(
        [sure, weak], SECTORS, publication="P", edition_date=NOW.date(), now=NOW, per_sector=5
    )
    (section,) = layout(edition)
    assert [s.id for s in section.stories] == ["sure"]
    assert [s.id for s in section.more] == ["weak"]


def test_the_same_shape_of_news_about_other_actors_is_another_event() -> None:
    """Two trade disputes told in the same words ("slaps tariffs", "vows to answer", "talks
    collapse"), between other countries: neither story names anyone the other does, so they
    stay apart (merged, the older dispute took the newer one's outlets and the lead)."""
    one = [
        (
            "US slaps tariffs on Canadian steel imports",
            "The US imposed a 25% tariff on steel "
            "imports from Canada, citing dumping by state-backed mills.",
        ),
        (
            "Canada vows to answer US tariffs on steel",
            "Canada said it would retaliate against "
            "the US steel tariffs with duties on machinery imports.",
        ),
        (
            "US and Canada trade talks collapse over steel tariffs",
            "Negotiators from the US and "
            "Canada walked out of trade talks on steel tariffs, officials said.",
        ),
    ]
    other = [
        (
            "China slaps tariffs on Australian aluminium",
            "China imposed a 25% tariff on "
            "aluminium imports from Australia, citing dumping by state-backed smelters.",
        ),
        (
            "Australia vows to answer China aluminium tariffs",
            "Australia said it would retaliate "
            "against the China tariffs with duties on wine and machinery imports.",
        ),
        (
            "China and Australia trade talks collapse over aluminium tariffs",
            "Negotiators from "
            "China and Australia walked out of trade talks on aluminium tariffs, officials said.",
        ),
    ]
    stories = [
        _story(f"a{n}", title, source="Day Wire", summary=lead, hours=30 - n)
        for n, (title, lead) in enumerate(one)
    ] + [
        _story(f"b{n}", title, source=f"Outlet {n}", summary=lead, hours=2)
        for n, (title, lead) in enumerate(other)
    ]
    for groups in (cluster(stories), brute_force(stories)):
        assert all(len({s.id[0] for s in group}) == 1 for group in groups), groups
    # and a report naming one of the actors the other names is still the same event
    again = _story(
        "c0",
        "Canberra vows to answer Beijing's aluminium tariffs",
        source="Outlet 9",
        summary="Australia said it would retaliate against the China tariffs with duties on wine "
        "and machinery imports.",
    )
    fillers = [  # a day of other news from other feeds: the dispute's words are rare in it
        _story(f"f{n}", " ".join(WORDS[n : n + 5]), source=f"Feed {n}") for n in range(20)
    ]
    merged = {frozenset(s.id for s in g) for g in cluster([*stories, again, *fillers])}
    assert any({"c0", "b1"} <= group for group in merged)


def test_one_shape_of_headline_about_other_things_is_other_news() -> None:
    """Copper and nickel at highs from two outlets; six companies charged in one regulator's
    feed; Monday's and Tuesday's settlement prices in one wire: all different news (merged,
    all but one vanished and the email said "also in")."""
    stories = [
        _story(
            "cu",
            "Copper hits 18-month high",
            source="Y1",
            summary="Copper on the LME rose as mine supply tightened.",
        ),
        _story(
            "ni",
            "Nickel hits 18-month high",
            source="Y2",
            summary="Nickel rose as Indonesian supply slowed.",
        ),
        *(
            _story(
                f"sec{n}",
                f"SEC charges {name} with accounting fraud",
                source="SEC",
                summary=f"The SEC charged {name} over its accounts.",
            )
            for n, name in enumerate(["Acme Lithium", "Borealis Oil", "Cobalt Point", "Dune"])
        ),
        _story(
            "mon",
            "Brent crude settles at $81.20 as OPEC holds output",
            source="Wire",
            summary="Brent settled at $81.20 on Monday as OPEC kept output steady.",
            hours=30,
        ),
        _story(
            "tue",
            "Brent crude settles at $83.40 as OPEC holds output",
            source="Wire",
            summary="Brent settled at $83.40 on Tuesday as OPEC kept output steady.",
        ),
    ]
    for groups in (cluster(stories), brute_force(stories)):
        assert all(len(group) == 1 for group in groups), [[s.id for s in g] for g in groups]


def test_a_feed_flooding_one_headline_shape_gives_few_candidate_pairs() -> None:
    """3,000 items of one feed in one shape ("Flood oil item 17 crude output at field 17"):
    their words are in too many stories to pair them, so the work grows with the stories, not
    with their pairs (all pairs were candidates: minutes and gigabytes at 9,000)."""
    from newsletter.edition.cluster import _docs, _rare_candidates, _Rarity

    stories = [
        _story(
            f"f{n}",
            f"Flood oil item {n} crude output at field {n}",
            source="Flood",
            summary=f"Item {n} of a feed that repeats one line about crude output.",
        )
        for n in range(3000)
    ] + [_story("x", "Refinery restarts after a fire", source="Other")]
    docs = _docs(stories)
    rarity = _Rarity(docs, [s.feed_url for s in stories])
    assert len(_rare_candidates(docs, rarity)) <= 10 * len(stories)
    assert len(cluster(stories)) == len(stories)  # and none is another's news


def test_two_feeds_of_one_publisher_with_one_link_are_one_outlet() -> None:
    """A publisher's main feed and its topic feed carry one article (one link): one outlet,
    not two (it led the email "also in" the publisher's own topic feed)."""
    article = "Refinery restarts after a fire at its crude unit"
    stories = [
        dataclasses.replace(
            _story(f"m{n}", article, source=name), url="https://m.example/a", feed_url=feed
        )
        for n, (name, feed) in enumerate(
            [
                ("MINING.COM", "https://www.m.example/feed/"),
                ("MINING.COM Rare Earths", "https://m.example/tag/rare-earths/feed/"),
                ("Syndicator", "https://syndicator.example.net/rss"),  # another site: counts
            ]
        )
    ] + [_story("o", article, source="Other Wire")]
    edition = build_edition(
        stories, SECTORS, publication="P", edition_date=NOW.date(), now=NOW, per_sector=5
    )
    (shown,) = [s for section in edition.sections for s in section.stories]
    assert shown.outlets == 3 and "Other Wire" in shown.also_in  # the publisher once
