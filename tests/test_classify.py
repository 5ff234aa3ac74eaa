from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.sectors.judge import make_classifier
from newsletter.sectors.rules import Classifier, SectorRule
from tests.conftest import ROOT

RULES = [
    SectorRule("evs", {"ev": 3, "electric vehicle": 3, "battery": 1}),
    SectorRule("oil", {"oil": 2, "crude": 3, "refiner*": 3}, exclude=["olive oil"]),
    SectorRule("rare", {"rare earth": 3}),
]


def make(rules: list[SectorRule], **settings: object) -> Classifier:
    values: dict[str, object] = {
        "title_weight": 2,
        "min_score": 2,
        "hint_bonus": 1,
        "secondary_ratio": 0.0,
        **settings,
    }
    return Classifier(rules, **values)  # type: ignore[arg-type]


@pytest.fixture
def clf() -> Classifier:
    return make(RULES)


def test_whole_words_only(clf: Classifier) -> None:
    assert clf.classify("Every level of the economy") == ()
    assert clf.classify("New EV tops sales") == ("evs",)
    assert clf.classify("EVs top sales") == ("evs",)  # a plain plural


def test_phrases_match_across_hyphens_and_case(clf: Classifier) -> None:
    assert clf.classify("RARE-EARTH plant opens") == ("rare",)
    assert clf.classify("Electric Vehicles sell") == ("evs",)


def test_prefix_wildcard(clf: Classifier) -> None:
    assert clf.classify("Refinery fire") == ("oil",)
    assert clf.classify("Refiners cut runs") == ("oil",)


def test_a_phrase_may_end_in_a_prefix() -> None:
    clf = make([SectorRule("trade", {"export licen*": 3, "gas utilit*": 3})])
    assert clf.classify("Ministry refuses export licences for tools") == ("trade",)
    assert clf.classify("Export licensing tightened") == ("trade",)
    assert clf.classify("Gas utilities raise bills") == ("trade",)
    assert clf.classify("Licences to export tools") == ()  # the phrase's words, in its order


def test_title_counts_more_than_summary(clf: Classifier) -> None:
    assert clf.classify("Crude slips", "An EV maker said so.") == ("oil", "evs")
    assert clf.classify("EV maker says", "Crude slips.") == ("evs", "oil")


def test_weak_words_alone_do_not_qualify(clf: Classifier) -> None:
    assert clf.classify("Phone deal", "A battery that lasts.") == ()


def test_exclusions_rule_a_sector_out(clf: Classifier) -> None:
    assert clf.classify("Olive oil prices soar") == ()


def test_hint_weighs_in_only_when_the_text_fits(clf: Classifier) -> None:
    assert clf.classify("Crude and EV news", hint="evs") == ("evs", "oil")
    assert clf.classify("Crude and EV news") == ("evs", "oil")  # tie: configured order
    assert clf.classify("Crude and EV news", hint="oil") == ("oil", "evs")
    assert clf.classify("Football results", hint="oil") == ()


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("Brent crude rises as OPEC+ extends cuts", "", "oil-gas"),
        ("Automaker recalls 40,000 electric cars over charging fault", "", "evs-battery"),
        ("Offshore wind farm reaches financial close", "", "esg-renewables"),
        ("Chipmaker lifts forecast on AI server demand", "", "ai-semiconductors"),
        ("Navy orders two more submarines", "The military programme grows.", "aerospace-defense"),
        ("Copper miner expands smelter capacity", "", "mining-metals"),
        ("Wheat and soybean futures fall", "", "rare-earths-commodities"),
        ("Treasury adds shipping firms to sanctions list", "", "sanctions-regulation"),
        ("Central bank raises interest rates to fight inflation", "", "business-politics"),
    ],
)
def test_default_rules_place_plain_headlines(title: str, summary: str, expected: str) -> None:
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    assert clf.classify(title, summary)[:1] == (expected,)


def test_an_ambiguous_word_and_its_plural_are_one_word_not_two() -> None:
    """ "chip" and "chips" are one ambiguous word (a plain plural is the same word): alone they
    do not decide a sector, as two different ambiguous words would."""
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    title = "Potato chip maker Crunchco raises prices by 8%"
    teaser = "The snack company said its potato chips will cost more from January."
    assert "ai-semiconductors" not in clf.classify(title, teaser)
    # two different ones still count together
    assert clf.classify("Chip packaging plant opens", "")[:1] == ("ai-semiconductors",)


@pytest.mark.parametrize(
    "title",
    [
        "Tennis star reaches the final in straight sets",
        "Five recipes for a quick weeknight dinner",
        "Museum reopens its sculpture garden",
    ],
)
def test_default_rules_leave_off_topic_out(title: str) -> None:
    clf = make_classifier(load_config(Path(ROOT / "config.yaml")))
    assert clf.classify(title) == ()


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        (  # a tutorial, not news
            "How to quickly solve machine learning forecasting problems",
            "A step-by-step guide for business analysts who forecast sales with notebooks.",
        ),
        (  # a product's rumoured features
            "Tablet rumors: thinner bezels, face unlock and a faster processor",
            "The next tablet may bring a new design and a faster chip, analysts say.",
        ),
    ],
)
def test_tutorials_and_product_rumours_stay_out(title: str, summary: str) -> None:
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    assert clf.classify(title, summary) == ()


def test_off_topic_words_must_be_outscored() -> None:
    clf = make(RULES, off_topic={"football": 3, "final": 1})
    assert clf.classify("Crude tanker delays the football final") == ()  # oil 6 vs off-topic 8
    # oil 12 beats off-topic 4 by half as much again, but the story may not lead a section
    verdict = clf.judge("Crude and refiners slump", "The football final was delayed.")
    assert verdict.sectors == ("oil",) and verdict.confidence[0] < 1


def test_longest_phrase_of_a_sector_wins_over_its_words() -> None:
    rules = [SectorRule("m", {"stock market": 3, "stock": 2, "market*": 1})]
    clf = make(rules, title_weight=1, min_score=1)
    assert clf.judge("Stock market falls").all_scores == {"m": 3.0}
    assert clf.judge("Stock and market news").all_scores == {"m": 3.0}


def test_a_phrase_counts_at_most_twice_per_field() -> None:
    clf = make([SectorRule("ai", {"ai": 2})], title_weight=1, min_score=1)
    assert clf.judge("AI, AI, AI and more AI").all_scores == {"ai": 4.0}


def test_fallback_sector_yields_to_a_decisive_industry_headline() -> None:
    rules = [
        SectorRule("chips", {"chipmaker": 3}),
        SectorRule("business", {"qtr": 2, "net": 1, "shr": 2, "profit": 2}, fallback=True),
    ]
    clf = make(rules, min_score=3)
    summary = "Shr 12 cts vs 10 cts. Net profit rose. Shr up again; net profit up."
    assert clf.classify("Chipmaker 2nd qtr net", summary) == ("chips", "business")
    assert clf.classify("Retailer 2nd qtr net", summary) == ("business",)


def test_a_fallback_sectors_corporate_words_count_for_the_industry_the_story_fits() -> None:
    """A chipmaker's listing is chip news, though "IPO" and "billion" outweigh "chipmaker";
    a markets story that names a chipmaker stays a markets story; without ``corporate`` the
    fallback's words all count as its own."""
    chips = SectorRule("chips", {"chipmaker": 3, "memory chip*": 3})
    words = {"ipo": 3, "billion": 1, "stocks": 3, "markets": 2}
    corporate = make(
        [chips, SectorRule("business", words, fallback=True, corporate=["ipo", "billion"])],
        min_score=3,
    )
    plain = make([chips, SectorRule("business", words, fallback=True)], min_score=3)
    listing = "Memory chipmaker plans $4.9 billion IPO"
    summary = "The IPO would be the year's largest, raising about 4.9 billion dollars."
    assert corporate.classify(listing, summary) == ("chips", "business")
    assert plain.classify(listing, summary) == ("business", "chips")
    markets = "Stocks slide as markets weigh a chipmaker's IPO"
    assert corporate.classify(markets)[0] == "business"
    explained = corporate.explain(listing, summary).matches
    assert ("corporate:business", "ipo") in {(m.rule, m.phrase) for m in explained}


def test_the_shipped_feed_hint_breaks_a_tie_but_never_outweighs_a_supporting_word() -> None:
    """A technology feed's story about pay: the rules give business one supporting word more,
    and the feed's hint does not overturn that; on an exact tie the hint decides."""
    hint = load_config(ROOT / "config.yaml").file.classify.hint_bonus
    rules = [SectorRule("ai", {"ai": 2}), SectorRule("biz", {"pay": 2, "wages": 1})]
    clf = make(rules, hint_bonus=hint, min_score=2)
    assert clf.classify("AI weighs on pay", "Wages grow slowly.", hint="ai")[0] == "biz"
    assert clf.classify("AI weighs on pay", "")[0] == "ai"  # a tie: the first sector
    assert clf.classify("AI weighs on pay", "", hint="biz")[0] == "biz"  # the hint decides
    too_strong = make(rules, hint_bonus=1, min_score=2)  # what the shipped config had
    assert too_strong.classify("AI weighs on pay", "Wages grow slowly.", hint="ai")[0] == "ai"


def test_digits_and_letters_are_separate_tokens() -> None:
    clf = make([SectorRule("power", {"mw": 2, "v2g": 3})], min_score=3)
    assert clf.classify("Investor buys 600MW wind project") == ("power",)
    assert clf.classify("V2G trial starts") == ("power",)


def test_a_word_with_a_second_meaning_never_decides_alone() -> None:
    rules = [SectorRule("evs", {"recall*": 3, "tesla": 3, "vehicle*": 1}, ambiguous=["recall*"])]
    clf = make(rules)
    assert clf.classify("Dodgers put outfielder on IL, recall a pitcher") == ()
    assert clf.classify("Tesla recalls its pickup") == ("evs",)
    # two different ambiguous words support each other; the same one twice does not
    both = make([SectorRule("farm", {"wheat": 3, "prices": 1}, ambiguous=["wheat", "prices"])])
    assert both.classify("Wheat prices jump") == ("farm",)
    assert both.classify("Wheat, wheat everywhere") == ()


def test_a_zero_weight_phrase_takes_its_words_out_of_a_sector() -> None:
    rules = [SectorRule("esg", {"climate": 3, "business climate": 0})]
    clf = make(rules)
    assert clf.classify("Climate talks resume") == ("esg",)
    assert clf.classify("Business climate sours in Europe") == ()


def test_the_folders_of_a_link_count_as_off_topic_evidence() -> None:
    clf = make(RULES, off_topic_paths={"sports": 8})
    assert clf.classify("EV maker buys a stake in a team", url="https://x.example/sports/a-b") == ()
    assert clf.classify("EV maker buys a stake", url="https://x.example/business/sports") == (
        "evs",
    )  # the article's own slug is not a folder


def test_a_weak_match_fits_but_is_not_confident() -> None:
    clf = make(RULES, lead_score=4)
    weak = clf.judge("Phone maker news", "An EV was shown.")  # ev 3 in the teaser only
    strong = clf.judge("EV maker news")  # ev 3 in the headline: 6
    assert weak.sectors == ("evs",) and weak.confidence[0] < 1
    assert strong.confidence[0] >= 1


def test_a_priority_sector_with_a_decisive_headline_goes_first() -> None:
    rules = [
        SectorRule("ai", {"anthropic": 3, "chip*": 3}),
        SectorRule("rules", {"ban": 3, "regulator": 3}, priority=True),
    ]
    clf = make(rules, min_score=3)
    assert clf.classify("Regulator moves to ban Anthropic chips") == ("rules", "ai")
    assert clf.classify("Anthropic chips", "A regulator watches.") == ("ai", "rules")


def test_explain_lists_every_phrase_with_its_weight() -> None:
    clf = make(RULES, off_topic={"football": 3}, off_topic_paths={"sport": 5})
    verdict = clf.explain("Crude slips", "Football and refiners.", url="https://x.example/sport/a")
    found = {(m.rule, m.phrase, m.field, m.weight) for m in verdict.matches}
    assert ("oil", "crude", "title", 6.0) in found  # 3, counted twice in a headline
    assert ("oil", "refiner*", "summary", 3.0) in found
    assert ("off-topic", "football", "summary", 3.0) in found
    assert ("off-topic", "/sport/", "link", 5.0) in found
    assert verdict.off_topic == 8.0


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        # trade measures and regulators' actions, however they are worded
        ("Trump threatens levies on European wine", "sanctions-regulation"),
        ("Washington adds Chinese firms to trade blacklist", "sanctions-regulation"),
        ("EU fines search giant 2.4 billion euros over shopping results", "sanctions-regulation"),
        ("Competition authority clears merger of two utilities", "sanctions-regulation"),
        ("White House delays chip export rules", "sanctions-regulation"),
        ("Commission proposes ban on Russian LNG imports", "sanctions-regulation"),
        ("Ruritania retaliates against steel quotas", "sanctions-regulation"),
        ("SEC charges hedge fund over undisclosed swaps exposure", "sanctions-regulation"),
        ("Washington extends textile quota pact with Freedonia", "sanctions-regulation"),
        ("Bloc proposes quotas on steel imports from Ostland", "sanctions-regulation"),
        ("Ruritania to set 100 pct duties in memory chip dispute", "sanctions-regulation"),
        # the power sector, whatever the plant burns
        ("Ministers approve new gas-fired power plant", "esg-renewables"),
        ("Cable maker lands HVDC link contract", "esg-renewables"),
        ("Turbine maker swings to loss as freight costs bite", "esg-renewables"),
        # companies' own news, labour and the real economy
        ("Luxury group posts weaker first-half results", "business-politics"),
        ("Supermarket chain's sales fall as shoppers cut back", "business-politics"),
        ("Dockworkers stage walkout over pay", "business-politics"),
        ("Factory activity contracts in the euro zone", "business-politics"),
        ("New government pledges to cut corporate tax", "business-politics"),
        # a central banker on any subject is speaking about the economy
        ("Machine learning may lift prices, Riksbank deputy says", "business-politics"),
        ("Chip boom complicates the PBOC's easing plans", "business-politics"),
        # money moving between markets is a markets story, whatever moved it
        (
            "Equity funds post their biggest outflows in months on crude oil jitters",
            "business-politics",
        ),
        ("Sensex and Nifty slide into a correction as crude climbs", "business-politics"),
        # a price move is the commodity's story, whatever moved it
        ("Oil climbs as Washington threatens sanctions on buyers", "oil-gas"),
        ("Drone strike sets fire to a refinery near a port", "oil-gas"),
        ("Drone maker wins army contract for loitering munitions", "aerospace-defense"),
        ("Envoy heads to the capital for talks on chip export curbs", "sanctions-regulation"),
        ("Gold surges as a bond buyback plan sends yields lower", "mining-metals"),
        # what a headline gives as the cause ("as ...", "amid ...") weighs less than its subject
        ("Asian stocks fall as oil jumps on shipping fears", "business-politics"),
        ("Rooftop solar installs slip as interest rates bite", "esg-renewables"),
        ("Small caps lag again as investors crowd into megacaps", "business-politics"),
        ("Stainless maker flags operations disruption due to fuel shortage", "mining-metals"),
        ("Brent slips after embargo talk fades", "oil-gas"),
        # a government's licences, waivers and trade status are sanctions and regulation news
        ("Ministry refuses export licences for wafer etching tools", "sanctions-regulation"),
        ("Washington extends waiver for Iraqi electricity imports", "sanctions-regulation"),
        ("Senate restores most-favoured-nation trade status to Freedonia", "sanctions-regulation"),
        ("Permian driller agrees to a $3 billion sale", "oil-gas"),
        ("Ministry's generative AI guidelines to carry no penalties", "sanctions-regulation"),
        # rule-making on a market is the regulator's story, whatever the market
        ("Exchange proposes easing rules for dual-class share listings", "sanctions-regulation"),
        ("Watchdog to tighten rules on battery-fund disclosures", "sanctions-regulation"),
    ],
)
def test_default_rules_know_what_each_sector_means(title: str, expected: str) -> None:
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    assert clf.judge(title).sectors[:1] == (expected,)


@pytest.mark.parametrize(
    "title",
    [
        "Militants attack checkpoint in the desert",
        # a strike is war news; a defence contract or an energy asset is the industry angle
        "Air strikes hit a village near the border",
        "Drone strike on a car near the capital draws condemnation",
        # diplomacy with no industry angle
        "Envoy warns an ally over an attack on a disused military base",
        "Ministry summons the ambassador over a senator's remarks",
        "Children have their say on a phone ban at school",
        "Syphilis cases climb for a third year",
        # a sum of money is a size, not a markets story
        "Villagers at risk as a multi-million dollar flood alarm is left to rust",
    ],
)
def test_war_politics_and_health_without_an_industry_angle_stay_out(title: str) -> None:
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    assert clf.judge(title).sectors == ()


@pytest.mark.parametrize(
    ("title", "summary", "link"),
    [
        (
            "Security firm fools the new phone's face unlock with a mask",
            "The company says the feature works in most kinds of light.",
            "https://gadgets.example.com/article/1/iphone-ipad/face-unlock-faq.html",
        ),
        (
            "The new desktop might be the first to run its own processor",
            "A report says the next iMac Pro carries the same chip as the phone.",
            "https://gadgets.example.com/article/2/macs/first-own-processor.html",
        ),
        (  # a site's section named by its host: a science journal's letter
            "Go with the flow in battery manufacturing",
            "",
            "https://science.journal.example.org/content/short/356/1134-b?rss=1",
        ),
    ],
)
def test_consumer_devices_and_science_are_no_industry_news(
    title: str, summary: str, link: str
) -> None:
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    assert clf.judge(title, summary, url=link).sectors == ()


def test_company_news_goes_to_an_industry_only_its_headlines_subject_names() -> None:
    """A news search's teaser repeats the headline: "AI" in the cause, twice, is still no AI
    story ("big tech where AI is one element" is Business & Politics)."""
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    title = "Social network plans sweeping layoffs as AI costs mount"
    assert clf.judge(title, f"{title} Wire").sectors[:1] == ("business-politics",)


@pytest.mark.parametrize("title", ["          as oil jumps", " as ", "amid", "Oil as"])
def test_a_headline_of_little_but_a_cause_word_is_judged_without_error(title: str) -> None:
    clf = make_classifier(load_config(ROOT / "config.yaml"))
    assert clf.judge(title, title).sectors in {(), ("oil-gas",)}
