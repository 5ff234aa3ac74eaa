"""Plain text and links from feed HTML: sanitised (nh3), entities decoded, cut to a teaser; a
person's name as printable single-line text. Pure."""

from __future__ import annotations

import html
import re
from email.header import decode_header, make_header
from urllib.parse import SplitResult, urlsplit, urlunsplit

import nh3

TEASER_LENGTH = 300
_TOKEN = re.compile(r"[^\W\d_]+|\d+")

# Query parameters that only track the click; dropped from canonical links.
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_hsenc"}
)
_TRACKING_PREFIXES = ("utm_", "_hs", "pk_", "mtm_")
_MAYBE_TRACKING = re.compile(
    r"(?i)(?:^|&)(?:utm_|_hs|pk_|mtm_|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid)"
)
_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|section)\b[^>]*>", re.I
)
_TAG = re.compile(r"<[a-zA-Z!/?]")
_TAG_LIKE = re.compile(r"<[a-zA-Z!/?][^>]*>?")
# Script-bearing URL schemes that survive as text (e.g. a link's text that is its own href).
_SCRIPT_SCHEME = re.compile(r"(?i)\b(?:javascript|vbscript|livescript)\s*:|\bdata:[a-z]+/[\w.+-]+")
# Built once: a Cleaner keeps nothing but text (script and style content are dropped whole).
_TEXT_ONLY = nh3.Cleaner(tags=set(), attributes={})
# Unicode's bidirectional controls (embeddings, overrides, isolates, marks): they make the text
# after them show in another order, so a headline, subject or name can read as something else.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NO_BIDI = str.maketrans(dict.fromkeys(BIDI_CONTROLS))


# Words that say nothing about which event a story reports (``cluster`` leaves them out).
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "they",
        "we",
        "you",
        "i",
        "his",
        "her",
        "their",
        "our",
        "your",
        "them",
        "him",
        "us",
        "not",
        "no",
        "yes",
        "will",
        "would",
        "can",
        "could",
        "may",
        "might",
        "shall",
        "should",
        "must",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "says",
        "said",
        "say",
        "new",
        "after",
        "over",
        "into",
        "out",
        "up",
        "down",
        "about",
        "than",
        "more",
        "most",
        "less",
        "least",
        "very",
        "just",
        "also",
        "amid",
        "among",
        "who",
        "whom",
        "which",
        "what",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "some",
        "each",
        "every",
        "other",
        "others",
        "such",
        "only",
        "own",
        "same",
        "so",
        "too",
        "s",
        "t",
        "reuters",
        "bloomberg",
        "news",
        "report",
        "reports",
        "reported",
        "video",
        "update",
        "live",
        "first",
        "year",
        "years",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "today",
        "yesterday",
        "tomorrow",
        "mr",
        "ms",
        "mrs",
    ]
)


def to_plain_text(fragment: str) -> str:
    """Sanitise HTML with nh3 and return plain text: no tags, entities decoded, spaces collapsed."""
    if "<" not in fragment and "&" not in fragment:
        text = fragment  # already plain: the common case for titles
    else:
        text = fragment
        for _ in range(3):  # double-encoded HTML ("&lt;b&gt;") shows its tags after unescaping
            text = _BLOCK_TAG.sub(" ", text)
            text = html.unescape(_TEXT_ONLY.clean(text))
            if not _TAG.search(text):
                break
        else:  # still tags after three rounds: drop what looks like one rather than keep markup
            text = _TAG_LIKE.sub("", text)
    if ":" in text:
        text = _SCRIPT_SCHEME.sub("", text)
    return plain_line(text)


def plain_line(text: str) -> str:
    """Text on one line, as a headline or a subject is shown: every space or line separator
    (tab, CR, LF, U+0085, U+2028, ...) one space, spaces collapsed, stripped, and the
    bidirectional controls gone."""
    if not text.isascii():
        text = text.translate(_NO_BIDI)
    return " ".join(text.split())


def plain_name(name: str) -> str:
    """A person's name as printable single-line text: RFC 2047 encoded-words decoded first (the
    decoded text is the name), then every space or line separator one space, control and
    format characters (the bidirectional controls among them) removed, spaces collapsed,
    stripped. What it returns is its own answer: no encoded-word is left to decode.

    Example: ``plain_name("=?utf-8?q?Tab=09Name?=")`` is ``"Tab Name"``.
    """
    if "=?" not in name and name.isprintable():  # the usual name: nothing to decode or drop
        return " ".join(name.split())
    text = name
    for _ in range(4):  # an encoded-word may hide another, or appear once a control is gone
        cleaned = _printable_line(decoded(text))
        if cleaned == text:
            return cleaned
        text = cleaned
    return _printable_line(text.replace("=?", "= ?"))  # still unfolding: break the syntax


def _printable_line(text: str) -> str:
    if not text.isprintable():  # (the usual name is, and skips the character-by-character look)
        text = "".join(" " if c.isspace() else c for c in text if c.isprintable() or c.isspace())
    return " ".join(text.split())


def teaser(text: str, length: int = TEASER_LENGTH) -> str:
    """Cut plain text at a sentence end, else a word boundary, near ``length`` characters."""
    if len(text) <= length:
        return text
    window = text[: length + 1]
    sentence_end = max(window.rfind(mark) for mark in (". ", "! ", "? "))
    if sentence_end >= length // 2:
        return window[: sentence_end + 1]
    space = window.rfind(" ")
    cut = window[:space] if space >= length // 2 else window[:length]
    return cut.rstrip(" ,;:-") + "…"


def web_url(candidate: str) -> str | None:
    """The canonical form of an absolute http(s) URL, or None for anything else."""
    parts = urlsplit(candidate.strip())
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    return _canonical(parts)


def canonical_url(url: str) -> str:
    """The link without tracking parameters or fragment, with scheme and host lower-cased."""
    return _canonical(urlsplit(url.strip()))


def _canonical(parts: SplitResult) -> str:
    query = parts.query
    if query and _MAYBE_TRACKING.search(query):
        # drop tracking parameters, keeping the others exactly as written
        kept = [p for p in query.split("&") if not _tracking(p.split("=", 1)[0].lower())]
        query = "&".join(kept)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


def _tracking(key: str) -> bool:
    return key in _TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES)


# a wire's dateline before its lead: "LONDON, Aug 21 :", "NEW YORK/PARIS (Wire) -", "BEIJING:",
# "Aug 21 :"
_DATELINE = re.compile(
    r"^\s*(?=[A-Z]{2}|[A-Z][a-z]{2}\.? \d)(?:[A-Z][A-Z.'/ -]{0,40}[A-Z.])?,?\s*"
    r"(?:[A-Z][a-z]{2,8}\.? \d{1,2})?\s*(?:\([^)]{1,40}\))?\s*[:\u2013\u2014-]\s+"
)


def without_dateline(text: str) -> str:
    """``text`` without the dateline a wire opens its lead with ("LONDON, Aug 21 : ")."""
    return _DATELINE.sub("", text, count=1)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, letters and digits apart: "600MW" is "600", "mw"."""
    return _TOKEN.findall(text.lower())


def title_case(title: str) -> bool:
    """Whether a headline capitalises its words (then its capitals name nothing)."""
    words = [w for w in title.split() if w[:1].isalpha() and w.lower() not in STOPWORDS]
    return sum(w[:1].isupper() for w in words) * 2 > len(words)


# a word capitalised after another of its sentence, not opening one: a name ("the US steel
# tariffs"; in a headline, a word after its first)
MID_CAPITAL = re.compile(r"(?<=[\w,'\u2019\u2014\u2013-] )[A-Z][\w'\u2019-]*")


def names_written(title: str, lead: str) -> frozenset[str]:
    """The names a story writes, lower-cased: words capitalised within a sentence of its lead,
    and of its headline unless that capitalises every word (``title_case``)."""
    texts = (lead,) if title_case(title) else (title, lead)
    return frozenset(w for text in texts for m in MID_CAPITAL.findall(text) for w in tokens(m))


def site_of(feed_url: str) -> str:
    """The site a feed is on (its host, without ``www.``), or the feed itself when it is a
    file."""
    host = urlsplit(feed_url).hostname if feed_url.startswith(("http://", "https://")) else None
    return host.removeprefix("www.") if host else feed_url


def headline_key(title: str) -> str:
    """A headline with case and punctuation gone, for comparing headlines."""
    return " ".join(tokens(title))


def decoded(name: str) -> str:
    """A name with any RFC 2047 encoded-words decoded, so what they hide can be checked."""
    if "=?" not in name:
        return name
    try:
        return str(make_header(decode_header(name)))
    except (ValueError, LookupError, UnicodeDecodeError):
        return name
