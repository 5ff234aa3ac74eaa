"""The grounding check: a written text is used only when every number and every name in it
appears in the outlets' own text it was written from. Pure.

Numbers are compared by value, so the forms outlets and models both use agree: "$1.4 billion",
"$1.4bn" and "US$1,400 million" are one figure, "20%", "20 percent" and "20 per cent" one
share. A written figure with a scale (million, bn) must match a figure of the sources with its
scale; a percentage must be a percentage there, a points change a points change; a currency, when
the written figure names one, the same currency. Number words count with a scale or a percent
("two billion"), and so does one standing alone ("three executives", "a dozen rivals"; "one"
aside), which must be a plain number of the sources; the sources' own number words ("Seven
projects") count as figures.

Names are the capitalised words and runs of them ("Bank of England", "Rio Tinto's") and every
acronym ("OPEC+", "U.S."): each run must appear in the sources, or be made of pieces that each
do ("UK Prime Minister Keir Starmer" from "UK" and "Prime Minister Keir Starmer"), matched on
whole words, case aside. A sentence's first word is capitalised anyway: it counts as a name only
when the sources do not have it at all, in any case, and it is not a common word ("The").

``problem`` also refuses what is not a summary: empty, too long, too many lines, markup, lists,
links, a reply to the prompt instead of an answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from newsletter.text import BIDI_CONTROLS, STOPWORDS

_NO_BIDI = str.maketrans(dict.fromkeys(BIDI_CONTROLS + "\u200b\u200c\u200d\u2060\ufeff"))
_THINKING = re.compile(r"^\s*<think>.*?</think>", re.S)  # a reasoning model's notes, first
_QUOTES = {'"': '"', "\u201c": "\u201d", "'": "'", "\u2018": "\u2019"}
_MARKUP = re.compile(r"[<>{}\[\]|*#`_\\]|https?://|www\.")
_LIST_ITEM = re.compile(r"^\s*(?:[-\u2022*]|\d+[.)])\s")
_REPLY = re.compile(
    r"^(?:I\b|I'm\b|As an AI\b|Sorry\b|Here is\b|Here's\b|Here are\b|Sure\b|Certainly\b|"
    r"Summary\b|Intro\b|Note\b|Okay\b|OK\b)",
    re.I,
)
_WHOLE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)]*$")

_SCALES = {
    "hundred": 1e2,
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "mln": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
    "tr": 1e12,
}
_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "dozen": 12,
}
_CURRENCIES = {
    "$": "USD",
    "us$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "\u00a3": "GBP",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "\u20ac": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "\u00a5": "JPY",
    "jpy": "JPY",
    "yen": "JPY",
    "yuan": "CNY",
    "cny": "CNY",
    "a$": "AUD",
    "c$": "CAD",
    "hk$": "HKD",
}
_FIGURE = re.compile(
    r"(?P<cur>(?:US|A|C|HK)\$|[$\u00a3\u20ac\u00a5]|\b(?:USD|EUR|GBP|JPY|CNY)\b)?\s?"
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
    r"|(?:" + "|".join(_WORDS) + r")(?=[\s-]+(?:hundred|thousand|million|billion|trillion|"
    r"percent|per cent)\b))"
    r"(?:[\s-]?(?P<word>hundred|thousand|million|billion|trillion)\b|\s?(?P<abbr>mn|mln|bn|tn)\b"
    r"|(?P<tight>k|m|b|tr)\b)?"
    r"(?:\s?(?P<share>%|percent\b|per cent\b)|\s(?P<points>percentage points?|points?|pp)\b)?"
    r"(?:\s(?P<named>dollars?|euros?|pounds?|yen|yuan)\b)?",
    re.I,
)
_SOURCE_WORD_NUMBER = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.I)
# a number word standing alone ("three executives", "a dozen rivals"); "one" is prose too
_BARE_WORD_NUMBER = re.compile(r"\b(" + "|".join(w for w in _WORDS if w != "one") + r")\b", re.I)

_WORD = re.compile(r"[^\W\d_](?:[\w&+'\u2019.-]*[\w+])?|\d[\w-]*")
_CONNECTORS = frozenset({"of", "and", "&", "de", "du", "la", "le", "van", "von", "der", "for"})
_POSSESSIVE = re.compile(r"(?:'s|\u2019s|'|\u2019)$")
_SENTENCE = re.compile(r"(?<=[.!?\u2026])[\"'\u201d\u2019)]*\s+|\n+|:\s+")
# abbreviations whose dot ends no sentence: the name after one is still checked
_ABBREVIATION = re.compile(
    r"\b(Mr|Mrs|Ms|Dr|Prof|St|Gen|Gov|Sen|Rep|Inc|Corp|Co|Ltd|Jr|Sr|No|vs|Jan|Feb|Mar|Apr|Jun|"
    r"Jul|Aug|Sep|Sept|Oct|Nov|Dec)\."
)


@dataclass(frozen=True, slots=True)
class Figure:
    """A number as written: its value (scaled), whether it had a scale, its kind and currency."""

    value: float
    raw: float
    scaled: bool
    unit: str  # "" a plain number, "%" a share, "pt" a change in points
    currency: str  # "" none named


def cleaned(answer: str) -> str:
    """The model's answer without a reasoning model's notes, surrounding quotes or blank
    lines, each line's spaces collapsed."""
    text = _THINKING.sub("", answer).translate(_NO_BIDI).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1] and text[-1] not in text[1:-1]:
        text = text[1:-1].strip()
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def problem(text: str, sources: str, *, limit: int, lines: int) -> str:
    """Why ``text`` (``cleaned``) may not be used: "" when it may."""
    shape = _shape_problem(text, limit=limit, lines=lines)
    if shape:
        return shape
    made_up = unsupported_figures(text, sources)
    if made_up:
        return "a number not in the sources: " + ", ".join(made_up)
    unknown = unsupported_names(text, sources)
    if unknown:
        return "a name not in the sources: " + ", ".join(unknown)
    return ""


def _shape_problem(text: str, *, limit: int, lines: int) -> str:
    if not text.strip():
        return "empty"
    if len(text) > limit:
        return f"too long ({len(text)} characters; at most {limit})"
    if _REPLY.match(text):
        return "a reply to the request, not the text asked for"
    if _MARKUP.search(text) or any(_LIST_ITEM.match(line) for line in text.splitlines()):
        return "not prose (markup, a list or a link)"
    found = text.count("\n") + 1
    if found > lines:
        return f"{found} lines (at most {lines})"
    if len(text.split()) < 5:
        return "too short"
    if not all(_WHOLE.search(line) for line in text.splitlines()):
        return "not whole sentences"
    return ""


def figures(text: str) -> list[Figure]:
    """Every number in ``text``, with its scale, kind and currency."""
    return [_figure(match) for match in _FIGURE.finditer(text)]


def _figure(match: re.Match[str]) -> Figure:
    number = match["num"].lower()
    raw = float(_WORDS[number]) if number in _WORDS else float(number.replace(",", ""))
    scale = _SCALES.get((match["word"] or match["abbr"] or match["tight"] or "").lower(), 1.0)
    unit = "%" if match["share"] else "pt" if match["points"] else ""
    money = (match["cur"] or match["named"] or "").lower()
    return Figure(raw * scale, raw, scale != 1.0, unit, _CURRENCIES.get(money, ""))


def unsupported_figures(text: str, sources: str) -> list[str]:
    """The numbers of ``text`` the sources do not give, as written."""
    known = figures(sources)
    for word in _SOURCE_WORD_NUMBER.findall(sources):
        value = float(_WORDS[word.lower()])
        known.append(Figure(value, value, False, "", ""))
    made_up = [
        match.group(0).strip()
        for match in _FIGURE.finditer(text)
        if not any(_supports(source, _figure(match)) for source in known)
    ]
    scaled = {m.start() for m in _FIGURE.finditer(text)}  # (their words are checked above)
    bare = [source for source in known if not source.unit]  # "three" is no "3%"
    values = {source.raw for source in bare} | {source.value for source in bare}
    return made_up + [
        match.group(0)
        for match in _BARE_WORD_NUMBER.finditer(text)
        if match.start() not in scaled and float(_WORDS[match.group(0).lower()]) not in values
    ]


def _supports(source: Figure, written: Figure) -> bool:
    if written.unit != source.unit:
        return False
    if written.currency and source.currency != written.currency:
        return False
    if written.scaled:
        return math.isclose(source.value, written.value, rel_tol=1e-9)
    # a bare number: the same figure, or the sources' own number before its scale
    return any(math.isclose(x, written.value, rel_tol=1e-9) for x in (source.value, source.raw))


def unsupported_names(text: str, sources: str) -> list[str]:
    """The names of ``text`` the sources do not give, as written."""
    haystack = _words_line(sources)
    missing: list[str] = []
    for run in _name_runs(text, haystack):
        missing.extend(_uncovered(run, haystack))
    return missing


def _name_runs(text: str, haystack: str) -> list[list[str]]:
    """Runs of name words (and the connectors inside them); a sentence's first word only when
    ``haystack`` lacks it and it is not a common word."""
    runs: list[list[str]] = []
    for sentence in _SENTENCE.split(_ABBREVIATION.sub(r"\1", text)):
        run: list[str] = []
        for n, match in enumerate(_WORD.finditer(sentence)):
            word = _POSSESSIVE.sub("", match.group(0)).strip(".-")
            for part in [p for p in re.split(r"-(?=\w)", word) if p] or [word]:
                opening = n == 0 and (part.lower() in STOPWORDS or _words_line(part) in haystack)
                if _is_name(part, opening=opening) or (run and part.lower() in _CONNECTORS):
                    run.append(part)
                else:
                    _close(run, runs)
                    run = []
        _close(run, runs)
    return runs


def _close(run: list[str], runs: list[list[str]]) -> None:
    while run and run[-1].lower() in _CONNECTORS:
        run.pop()
    if run:
        runs.append(list(run))


def _is_name(word: str, *, opening: bool) -> bool:
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return False
    acronym = len(letters) >= 2 and all(c.isupper() for c in letters)
    return acronym or (not opening and word[0].isupper())


def _uncovered(run: list[str], haystack: str) -> list[str]:
    """The words of ``run`` no piece found in ``haystack`` covers (longest pieces first), a
    stretch of them together."""
    missing: list[str] = []
    joined = False  # the last word missed too: this one continues its stretch
    start = 0
    while start < len(run):
        end = next(
            (
                stop
                for stop in range(len(run), start, -1)
                if run[stop - 1].lower() not in _CONNECTORS
                and _words_line(" ".join(run[start:stop])) in haystack
            ),
            None,
        )
        if end is None:
            if joined:
                missing[-1] = f"{missing[-1]} {run[start]}"
            else:
                missing.append(run[start])
            joined = True
            start += 1
        else:
            joined = False
            start = end
    return [m for m in missing if m.lower() not in _CONNECTORS]


def _words_line(text: str) -> str:
    """``text`` as its words, lower case, hyphens as spaces, no dots or plus signs (U.S.,
    OPEC+), one space apart, padded with a space."""
    words = (
        _POSSESSIVE.sub("", w).replace(".", "").replace("+", "").replace("-", " ")
        for w in _WORD.findall(text)
    )
    return " " + " ".join(" ".join(words).lower().split()) + " "
