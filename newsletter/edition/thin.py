"""Items that may fill "more" but never lead a section: live blogs, opinion pieces and stories
with no usable teaser; and items an edition never shows at all (``HIDDEN``): videos (also one
whose teaser says it is footage: "The agency has released timelapse video of ..."), podcasts,
TV-show promos, photo galleries, newsletter promos, ceremonies (a service's remembrance day or
award event is of its sector, but no news for an industry's reader), roundups (a week in
review, a week ahead, "things to know", "trending stocks this week": a digest of other news),
investment pitches (a contributor's case for a stock or a fund: "X: The Most Important AI
Compounder", "Top 50 Dividend Growth Stocks", "3 Stocks to Buy Now"), soundbites (a wire's
"Market Talk:" column; one voice's hedged view or appeal with no figure in it: "AI could push up
inflation - central banker says", "Lawmaker urges ..."), personnel moves below the top of a
company ("X's chief communications executive to leave") and factboxes (background: "Factbox:",
"Timeline:", "Biggest oil supply disruptions in history"). Pure.

Each is recognised from what a feed gives: the link's path (``/video/``, ``/podcasts/``,
``/live/``, ``/photography/``, an investor site's analysis folder...), the headline (``WATCH:``,
"In pictures", a show's name and date after a bar: "... | The Close 8/21/2026", "Opinion:",
"The Week in ...", "stocks to buy"), the teaser's first words and the feed's own name
("... Podcast", "... Commentaries").
``thin_reason`` says which, for ``review`` and the tests.
"""

from __future__ import annotations

import functools
import re

from newsletter.models import Story
from newsletter.text import tokens

# a path segment that names the kind of page (compared whole, lower-cased, with ``-``/``_``)
_PATH_KINDS = {
    "video": "a video",
    "videos": "a video",
    "watch": "a video",
    "av": "a video",
    "tv": "a video",
    "podcast": "a podcast",
    "podcasts": "a podcast",
    "audio": "a podcast",
    "listen": "a podcast",
    "gallery": "a photo gallery",
    "galleries": "a photo gallery",
    "photo": "a photo gallery",
    "photos": "a photo gallery",
    "photography": "a photo gallery",
    "pictures": "a photo gallery",
    "in-pictures": "a photo gallery",
    "slideshow": "a photo gallery",
    "live": "a live blog",
    "liveblog": "a live blog",
    "live-news": "a live blog",
    "live-updates": "a live blog",
    "newsletter": "a newsletter promo",
    "newsletters": "a newsletter promo",
    "briefing": "a newsletter promo",
    "opinion": "an opinion piece",
    "opinions": "an opinion piece",
    "commentary": "an opinion piece",
    "commentaries": "an opinion piece",
    "op-ed": "an opinion piece",
    "op-eds": "an opinion piece",
    "editorial": "an opinion piece",
    "editorials": "an opinion piece",
}
# each pattern, the kind it finds, and words one of which a headline it matches holds (lower-cased):
# asked of every story of a window, a pattern is tried only on the headlines that hold its words
_TITLE_KINDS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"^\s*(watch|video|videos)\s*(:|\||\s-\s)", re.I), "a video", ("watch", "video")),
    (re.compile(r"\b(b-roll|broll|time-?lapse)\b", re.I), "a video", ("roll", "lapse")),
    (
        re.compile(r"^\s*(listen|podcast|audio)\s*(:|\||\s-\s)", re.I),
        "a podcast",
        ("listen", "podcast", "audio"),
    ),
    (re.compile(r"[|(\-\u2013]\s*podcast\W*$", re.I), "a podcast", ("podcast",)),
    (re.compile(r"\bepisode \d+\b|\bep\. ?\d+\b", re.I), "a podcast", ("episode", "ep.")),
    (
        re.compile(r"^\s*(in pictures|photos?|gallery|in photos)\s*(:|\||\s-\s)", re.I),
        "a photo gallery",
        ("picture", "photo", "gallery"),
    ),
    (re.compile(r"\bphotos of the week\b", re.I), "a photo gallery", ("photos of the week",)),
    (
        re.compile(r"^\s*live\s*(:|\||\s-\s)|\blive updates?\b|\bliveblog\b|\blive blog\b", re.I),
        "a live blog",
        ("live",),
    ),
    (
        re.compile(r"\bsign up for\b|\bsubscribe to (our|the)\b.*\bnewsletter\b", re.I),
        "a newsletter promo",
        ("sign up for", "subscribe to"),
    ),
    (
        re.compile(r"^\s*(opinion|commentary|op-ed|editorial)\s*(:|\||\s-\s)", re.I),
        "an opinion piece",
        ("opinion", "commentary", "op-ed", "editorial"),
    ),
    (
        re.compile(
            r"^\s*the week in\b|\bweek ahead\b|\bweek in review\b|\bweekly (wrap|roundup|recap)\b"
            r"|\bwhat to watch\b|\bthings to (know|watch)\b|\bcatalyst watch\b"
            r"|\b(trending|top) stocks (this|of the) week\b|\bstocks to watch\b",
            re.I,
        ),
        "a weekly roundup",
        ("week", "watch", "to know"),
    ),
    (
        re.compile(
            r"\b(memorial day|veterans day|remembrance (day|sunday)|ceremon(y|ies)"
            r"|commemorat\w*|celebration of life|honou?red|medal of honou?r"
            r"|recognition event|change of command|pays? tribute|paid tribute|war dead"
            r"|wreaths?)\b",
            re.I,
        ),
        "a ceremony",
        (
            *("memorial", "veterans", "remembrance", "ceremon", "commemorat", "celebration of"),
            *("honored", "honoured", "medal of", "recognition event", "change of command"),
            *("tribute", "war dead", "wreath"),
        ),
    ),
    # a wire's column of strategists' one-line views: "Market Talk: Stocks could ..."
    (re.compile(r"^\s*market talk\s*(:|\||\s-\s)", re.I), "a soundbite", ("market talk",)),
    # one voice's view with no figure in it: said (or urged), and hedged or a wish ("AI could
    # push up inflation - central banker says", "X sees volatility 'short-term', CEO says",
    # "Lawmaker urges ...", "Kremlin says Russia and US share interest in ...")
    (
        re.compile(
            r"^(?!.*\d)(?=.*\b(says?|said|warns?|tells?|urges?|calls (for|on))\b)"
            r"(?=.*\b(could|may|might|would|should|sees|expects|predicts|believes|thinks"
            r"|hopes|wants to|shares? (an? )?interest|open to|urges?)\b)",
            re.I,
        ),
        "a soundbite",
        ("say", "said", "warn", "tell", "urge", "calls "),
    ),
    # background, not the day's news: a wire's factbox or timeline, a list of records
    # ("Biggest oil supply disruptions in history")
    (
        re.compile(
            r"^\s*(factbox|fact box|timeline)\s*(:|\||\s-\s)"
            r"|^\s*(the\s+)?(biggest|largest|worst|deadliest|costliest)\s[^:]*\bin history\b",
            re.I,
        ),
        "a factbox",
        ("fact", "timeline", "history"),
    ),
    # a routine move below the top of a company: "X's chief communications executive to leave",
    # "Y to appoint an ex-officer to its board" (a chief executive, a chair or a finance chief
    # changing is news)
    (
        re.compile(
            r"^(?!.*\b(ceo|chief executive|chair|chairman|chairwoman|president|cfo"
            r"|chief financial|finance chief|governor|minister|secretary|founder)\b)"
            r"(?=.*\b(appoint|appoints|appointed|names|named|hires|hired|to leave|leaves"
            r"|step down|steps down|stepping down|departs|resigns|resigned|retires|joins)\b)"
            r"(?=.*\b(communications|marketing|spokesman|spokeswoman|spokesperson|board"
            r"|director|directors|officer|officers|head of|vice president|general counsel"
            r"|adviser|advisor|executive)\b)",
            re.I,
        ),
        "a personnel move",
        ("appoint", "name", "hire", "leave", "step", "depart", "resign", "retire", "join"),
    ),
    # a TV or radio show's episode: "Headline | Show Name 8/21/2026"
    (re.compile(r"\|\s*[^|]{2,40}\s\d{1,2}/\d{1,2}/\d{2,4}\s*$"), "a show promo", ("|",)),
    (
        re.compile(
            r"\b(stocks?|shares|etfs?|funds?) to (buy|own|hold|sell|avoid)\b|\bstrong buy\b"
            r"|\b(is|still) a (buy|sell)\b|\b(buy|sell|hold) rating\b"
            r"|\bcompounders?\b|\bhigh-conviction\b|\bmulti-?baggers?\b"
            r"|\bdividend (growth|stocks?|aristocrats?|kings?)\b|\bpassive income\b"
            r"|\bbuy the dip\b|\b(should|could) you buy\b",
            re.I,
        ),
        "an investment pitch",
        (
            *("buy", "sell", " to own", "hold", " to avoid", "compounder", "conviction"),
            *("bagger", "dividend", "passive income"),
        ),
    ),
]
# an investor site's folder of contributors' analysis (its news items live elsewhere):
# host (or its parent domain) → the path's start
_PITCH_LINKS = {"seekingalpha.com": "/article/", "fool.com": "/investing/"}
_SOURCE_KINDS = [
    (re.compile(r"\bpodcasts?\b", re.I), "a podcast"),
    (re.compile(r"\b(video|videos|tv)\b", re.I), "a video"),
    (
        re.compile(r"\b(opinion|commentary|commentaries|op-eds?|editorials?)\b", re.I),
        "an opinion piece",
    ),
]
FOOTAGE = "a video (so its teaser says)"
# what an edition never shows, not even as a "more" headline or a storyline's other report
HIDDEN = frozenset(
    [
        *("a video", FOOTAGE, "a podcast", "a photo gallery", "a show promo"),
        "a newsletter promo",
        *("a ceremony", "an investment pitch", "a weekly roundup", "a soundbite", "a factbox"),
        "a personnel move",
    ]
)
# a whole path segment naming a kind of page; any of the headline patterns (a first test)
_PATH_KIND = re.compile(
    "/("
    + "|".join(sorted({re.escape(k).replace("\\-", "[-_]") for k in _PATH_KINDS}, key=len)[::-1])
    + ")(?=/|$)"
)
_TITLE_WORDS = tuple(dict.fromkeys(word for *_, words in _TITLE_KINDS for word in words))
# a teaser whose first words say the item is footage: "ESA has released timelapse video of ..."
_VIDEO_TEASER = re.compile(
    r"^\W*(\w+\W+){0,6}?(released|posted|shared|published)\s+(a\s+|an\s+|the\s+|this\s+)?"
    r"(\w+\s+){0,2}(video|timelapse|time-lapse|footage)\b",
    re.I,
)
_FOOTAGE_WORDS = ("video", "lapse", "footage")  # what ``_VIDEO_TEASER`` needs one of
_MIN_TEASER_WORDS = 6  # a teaser shorter than this, or the headline again, tells a reader nothing


def thin_reason(story: Story) -> str:
    """Why ``story`` may not lead a section ("a video", "no teaser", ...), or "" when it may.
    Asked again for each reader's variant of an edition: worked out once per story."""
    return _thin_reason(story.url, story.title, story.source, story.summary)


@functools.lru_cache(maxsize=1 << 14)  # an edition's sections hold at most 1,800
def _thin_reason(url: str, title: str, source: str, summary: str) -> str:
    kind = _kind_of(url, title, source) or _footage(summary)
    return kind or ("" if _usable(title, summary) else "no teaser")


def hidden_reason(story: Story) -> str:
    """Why an edition never shows ``story`` (a video, a ceremony...), or "" when it may."""
    kind = _kind_of(story.url, story.title, story.source) or _footage(story.summary)
    return kind if kind in HIDDEN else ""


def _footage(summary: str) -> str:
    """``FOOTAGE`` when the teaser's first words say the item is a video (one look for the
    words first: asked of every story of a window)."""
    opening = summary[:300]
    lowered = opening.lower()
    if any(word in lowered for word in _FOOTAGE_WORDS) and _VIDEO_TEASER.search(opening):
        return FOOTAGE
    return ""


def _kind_of(url: str, title: str, source: str) -> str:
    """The kind of page the link, the headline or the feed's name says, a kind never shown
    first (a ceremony in a commentaries folder is a ceremony). Cheap enough for every story of
    a window: one search of the link's path, one of the headline, the feed's kind worked out
    once."""
    link = url.split("?", 1)[0].split("#", 1)[0]
    start = link.find("/", link.find("//") + 2)
    path = link[start:].lower() if start >= 0 else ""
    found = _PATH_KIND.search(path)
    kinds = (
        _PATH_KINDS[found.group(1).replace("_", "-")] if found else "",
        _pitch_link(link[link.find("//") + 2 : start if start >= 0 else None].lower(), path),
        _title_kind(title),
        _source_kind(source),
    )
    return next((k for k in kinds if k in HIDDEN), "") or next((k for k in kinds if k), "")


def _pitch_link(host: str, path: str) -> str:
    """ "an investment pitch" for a link into an investor site's analysis folder."""
    host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    for domain, folder in _PITCH_LINKS.items():
        if (host == domain or host.endswith("." + domain)) and path.startswith(folder):
            return "an investment pitch"
    return ""


def _title_kind(title: str) -> str:
    lowered = title.lower()
    if not any(map(lowered.__contains__, _TITLE_WORDS)):  # most headlines: one look
        return ""
    for pattern, kind, words in _TITLE_KINDS:
        if any(map(lowered.__contains__, words)) and pattern.search(title):
            return kind
    return ""


@functools.lru_cache(maxsize=4096)
def _source_kind(source: str) -> str:
    for pattern, kind in _SOURCE_KINDS:
        if pattern.search(source):
            return kind
    return ""


def usable_teaser(story: Story) -> bool:
    """A teaser that says more than the headline: a few words, not the headline again."""
    return _usable(story.title, story.summary)


def _usable(title: str, summary: str) -> bool:
    words = tokens(summary)
    if len(words) < _MIN_TEASER_WORDS:
        return False
    headline = set(tokens(title))
    return len(set(words) - headline) >= 3
