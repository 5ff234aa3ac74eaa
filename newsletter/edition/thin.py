"""Items that may fill "more" but never lead a section: live blogs, opinion pieces, weekly
roundups, and stories with no usable teaser; and items an edition never shows at all (``HIDDEN``):
videos, podcasts, TV-show promos, photo galleries, newsletter promos and ceremonies (a service's
remembrance day or award event is of its sector, but no news for an industry's reader). Pure.

Each is recognised from what a feed gives: the link's path (``/video/``, ``/podcasts/``,
``/live/``, ``/photography/``...), the headline (``WATCH:``, "In pictures", a show's name and
date after a bar: "... | The Close 8/21/2026", "Opinion:", "The Week in ...") and the feed's own
name ("... Podcast", "... Commentaries").
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
_TITLE_KINDS = [
    (re.compile(r"^\s*(watch|video|videos)\s*(:|\||\s-\s)", re.I), "a video"),
    (re.compile(r"\b(b-roll|broll|time-?lapse)\b", re.I), "a video"),
    (re.compile(r"^\s*(listen|podcast|audio)\s*(:|\||\s-\s)", re.I), "a podcast"),
    (re.compile(r"[|(\-\u2013]\s*podcast\W*$", re.I), "a podcast"),
    (re.compile(r"\bepisode \d+\b|\bep\. ?\d+\b", re.I), "a podcast"),
    (
        re.compile(r"^\s*(in pictures|photos?|gallery|in photos)\s*(:|\||\s-\s)", re.I),
        "a photo gallery",
    ),
    (re.compile(r"\bphotos of the week\b", re.I), "a photo gallery"),
    (
        re.compile(r"^\s*live\s*(:|\||\s-\s)|\blive updates?\b|\bliveblog\b|\blive blog\b", re.I),
        "a live blog",
    ),
    (
        re.compile(r"\bsign up for\b|\bsubscribe to (our|the)\b.*\bnewsletter\b", re.I),
        "a newsletter promo",
    ),
    (
        re.compile(r"^\s*(opinion|commentary|op-ed|editorial)\s*(:|\||\s-\s)", re.I),
        "an opinion piece",
    ),
    (re.compile(r"^\s*the week in\b", re.I), "a weekly roundup"),
    (
        re.compile(
            r"\b(memorial day|veterans day|remembrance (day|sunday)|ceremon(y|ies)"
            r"|commemorat\w*|celebration of life|honou?red|medal of honou?r"
            r"|recognition event|change of command|pays? tribute|paid tribute|war dead"
            r"|wreaths?)\b",
            re.I,
        ),
        "a ceremony",
    ),
    # a TV or radio show's episode: "Headline | Show Name 8/21/2026"
    (re.compile(r"\|\s*[^|]{2,40}\s\d{1,2}/\d{1,2}/\d{2,4}\s*$"), "a show promo"),
]
_SOURCE_KINDS = [
    (re.compile(r"\bpodcasts?\b", re.I), "a podcast"),
    (re.compile(r"\b(video|videos|tv)\b", re.I), "a video"),
    (
        re.compile(r"\b(opinion|commentary|commentaries|op-eds?|editorials?)\b", re.I),
        "an opinion piece",
    ),
]
# what an edition never shows, not even as a "more" headline or a storyline's other report
HIDDEN = frozenset(
    ["a video", "a podcast", "a photo gallery", "a show promo", "a newsletter promo", "a ceremony"]
)
# a whole path segment naming a kind of page; any of the headline patterns (a first test)
_PATH_KIND = re.compile(
    "/("
    + "|".join(sorted({re.escape(k).replace("\\-", "[-_]") for k in _PATH_KINDS}, key=len)[::-1])
    + ")(?=/|$)"
)
# a lower-cased headline can match a pattern of ``_TITLE_KINDS`` only if it holds one of these
_TITLE_TRIGGERS = (
    *("watch", "video", "roll", "lapse", "listen", "podcast", "audio", "episode", "ep."),
    *("picture", "photo", "gallery", "live", "sign up", "subscribe", "opinion", "commentary"),
    *("op-ed", "editorial", "week in", "memorial", "veterans", "remembrance", "ceremon"),
    *("commemorat", "celebration of life", "honored", "honoured", "medal of", "tribute"),
    *("recognition event", "change of command", "war dead", "wreath", "|"),
)
_MIN_TEASER_WORDS = 6  # a teaser shorter than this, or the headline again, tells a reader nothing


def thin_reason(story: Story) -> str:
    """Why ``story`` may not lead a section ("a video", "no teaser", ...), or "" when it may."""
    return _kind(story) or ("" if usable_teaser(story) else "no teaser")


def hidden_reason(story: Story) -> str:
    """Why an edition never shows ``story`` (a video, a ceremony...), or "" when it may."""
    kind = _kind(story)
    return kind if kind in HIDDEN else ""


def _kind(story: Story) -> str:
    """The kind of page the link, the headline or the feed's name says, a kind never shown
    first (a ceremony in a commentaries folder is a ceremony). Cheap enough for every story of
    a window: one search of the link's path, one of the headline, the feed's kind worked out
    once."""
    path = story.url.split("?", 1)[0].split("#", 1)[0]
    found = _PATH_KIND.search(path[path.find("/", path.find("//") + 2) :].lower())
    kinds = (
        _PATH_KINDS[found.group(1).replace("_", "-")] if found else "",
        _title_kind(story.title),
        _source_kind(story.source),
    )
    return next((k for k in kinds if k in HIDDEN), "") or next((k for k in kinds if k), "")


def _title_kind(title: str) -> str:
    if any(map(title.lower().__contains__, _TITLE_TRIGGERS)):
        for pattern, kind in _TITLE_KINDS:
            if pattern.search(title):
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
    words = tokens(story.summary)
    if len(words) < _MIN_TEASER_WORDS:
        return False
    headline = set(tokens(story.title))
    return len(set(words) - headline) >= 3
