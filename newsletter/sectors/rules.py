"""Sectors for a story, ranked, from the configured keyword rules. Pure.

Text is split into lower-case word tokens (letters and digits apart: "600MW" is "600", "mw"); a
keyword or phrase matches a run of whole tokens, so "ev" never matches inside "every" and "rare
earth" also matches "rare-earth". A keyword ending in ``*`` matches any token that starts with it
(a phrase's last word: "export licen*"); a plain "s" plural matches too. Each phrase counts at
most twice per field, and a headline match counts ``title_weight`` times.

A sector's *ambiguous* keywords (words with a second meaning: "recall", "copper", "grain") count
only beside a plain keyword of the same sector or a second, different ambiguous one ("wheat" and
"prices"), so a single word never decides a sector alone.
A feed's sector hint adds ``hint_bonus`` to that sector when the text already fits it; any
exclusion term rules a sector out. The off-topic rules (words, and folders of the story's link
such as ``/sports/``, or the section its host names: ``sports.example.com``) score like a
sector: a sector must beat them by half as much again.

Sectors that reach ``min_score`` and at least ``secondary_ratio`` of the best one are returned,
best first; a fallback sector (Business & Politics) goes behind an industry sector with a
decisive headline, or one that fits as well as its words other than corporate news'. A story
that scores at least ``lead_score`` in a sector (with no real off-topic evidence) is
*confident* there: it may lead that section; one that only scrapes past ``min_score`` may only
fill a section's "more" list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newsletter.models import SectorFit, sector_fits
from newsletter.sectors.keywords import KeywordIndex, add_phrase, matches
from newsletter.text import tokens

_OFF_TOPIC_MARGIN = 1.5  # a sector needs this many times the off-topic score


@dataclass(frozen=True, slots=True)
class SectorRule:
    slug: str
    keywords: Mapping[str, float]
    exclude: Sequence[str] = ()
    # A fallback sector (Business & Politics) yields first place to a sector whose headline is
    # decisive (scores twice ``min_score``) and at least as strong as its own: corporate news
    # goes to its industry, while a markets story that mentions oil stays a markets story.
    fallback: bool = False
    # keywords with a second meaning: they count only beside another keyword of this sector
    ambiguous: Sequence[str] = ()
    # A sector that cuts across the others (Sanctions & Regulation): when its headline is
    # decisive it goes first, and the industry it acts on comes second.
    priority: bool = False
    # A fallback sector's words of corporate news (deals, listings, earnings): a story's
    # company is in an industry when an industry sector fits, so there they count for that
    # industry's benefit: the fallback goes behind any industry sector that fits at least as
    # well as the fallback's other words ("Chipmaker plans $4.9 billion IPO" is chip news).
    corporate: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """One rule that fired, for ``explain``: where, which phrase, and what it added."""

    rule: str  # a sector slug, "off-topic", or "exclude:<slug>"
    phrase: str
    weight: float  # as counted: headline matches already multiplied by ``title_weight``
    field: str  # title | summary | link
    ambiguous: bool = False  # an ambiguous keyword (counted only beside another one)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rules decided for one story, with the evidence."""

    sectors: tuple[str, ...]  # best first; empty when the story fits none
    scores: tuple[float, ...]  # the score of each of ``sectors``
    # per sector: the score as a share of ``lead_score``; 1 or more lets the story lead a
    # section (never with real off-topic evidence)
    confidence: tuple[float, ...]
    all_scores: Mapping[str, float]  # every sector with a score, before thresholds
    off_topic: float
    excluded: tuple[str, ...] = ()  # sectors ruled out by an exclusion term
    matches: tuple[Match, ...] = ()  # filled only by ``explain``

    @property
    def fits(self) -> tuple[SectorFit, ...]:
        """The sectors with their confidence, as a story carries them."""
        return sector_fits(self.sectors, self.confidence)


class Classifier:
    """Compiled rules; call ``classify`` (or ``judge``, ``explain``) for each story."""

    def __init__(
        self,
        rules: Sequence[SectorRule],
        *,
        off_topic: Mapping[str, float] | None = None,
        off_topic_paths: Mapping[str, float] | None = None,
        title_weight: float,
        min_score: float,
        hint_bonus: float,
        secondary_ratio: float,
        lead_score: float | None = None,
    ) -> None:
        self.slugs = tuple(rule.slug for rule in rules)
        self._fallback = tuple(rule.fallback for rule in rules)
        self._priority = tuple(rule.priority for rule in rules)
        self.title_weight = title_weight
        self.min_score = min_score
        self.hint_bonus = hint_bonus
        self.secondary_ratio = secondary_ratio
        self.lead_score = min_score if lead_score is None else lead_score
        self._paths = {key.strip("/").lower(): w for key, w in (off_topic_paths or {}).items()}
        # One index for everything, so each field is scanned once. Slots: sector i scores in i,
        # the off-topic rules in n, sector i's exclusions in n + 1 + i and its ambiguous
        # keywords in 2n + 1 + i.
        n = len(rules)
        self._off = n
        self._excluded = n + 1
        self._ambiguous = 2 * n + 1
        self._corporate = 3 * n + 1  # sector i's corporate words, counted again apart
        self._slots = 4 * n + 1
        self._keywords = KeywordIndex()
        self._labels: dict[int, str] = {n: "off-topic"}
        for i, rule in enumerate(rules):
            self._labels[i] = self._labels[self._ambiguous + i] = rule.slug
            self._labels[self._excluded + i] = f"exclude:{rule.slug}"
            self._labels[self._corporate + i] = f"corporate:{rule.slug}"
            vague = {" ".join(tokens(p)) for p in rule.ambiguous}
            corporate = {" ".join(tokens(p)) for p in rule.corporate}
            for phrase, weight in rule.keywords.items():
                key = " ".join(tokens(phrase))
                slot = self._ambiguous + i if key in vague else i
                add_phrase(self._keywords, phrase, slot, weight)
                if key in corporate:
                    add_phrase(self._keywords, phrase, self._corporate + i, weight)
            for phrase in rule.exclude:
                add_phrase(self._keywords, phrase, self._excluded + i, 1.0)
        for phrase, weight in (off_topic or {}).items():
            add_phrase(self._keywords, phrase, self._off, weight)

    def classify(
        self, title: str, summary: str = "", hint: str | None = None, url: str = ""
    ) -> tuple[str, ...]:
        """Sector slugs the story fits, best first; empty when it fits none."""
        return self.judge(title, summary, hint, url).sectors

    def judge(
        self, title: str, summary: str = "", hint: str | None = None, url: str = ""
    ) -> Verdict:
        """The sectors with their scores and whether the first one is confident."""
        return self._judge(title, summary, hint, url, None)

    def explain(
        self, title: str, summary: str = "", hint: str | None = None, url: str = ""
    ) -> Verdict:
        """``judge`` with every matched phrase, for an editor fixing a rule."""
        trace: list[Match] = []
        verdict = self._judge(title, summary, hint, url, trace)
        return Verdict(
            verdict.sectors,
            verdict.scores,
            verdict.confidence,
            verdict.all_scores,
            verdict.off_topic,
            verdict.excluded,
            tuple(trace),
        )

    def _judge(
        self, title: str, summary: str, hint: str | None, url: str, trace: list[Match] | None
    ) -> Verdict:
        totals, headline = self._score(title, summary, hint, url, trace)
        n = len(self.slugs)
        excluded = tuple(self.slugs[i] for i in range(n) if totals[self._excluded + i])
        all_scores = {self.slugs[i]: totals[i] for i in range(n) if totals[i] > 0}
        off = totals[self._off]
        # a sector must clearly beat the off-topic evidence: half as much again
        floor = max(self.min_score, off * _OFF_TOPIC_MARGIN + 1e-9)
        fitting = {i: score for i, score in enumerate(totals[:n]) if score >= floor}
        if not fitting:
            return Verdict((), (), (), all_scores, off, excluded)
        decisive = 2 * self.min_score

        def rank(i: int) -> tuple[bool, bool, float, float, int]:
            # A fallback sector goes behind a sector with a decisive headline unless its own
            # headline says more ("Exxon profit falls" is oil news, "Stocks slide as oil prices
            # rattle markets" is a markets story), and behind one that fits at least as well as
            # its words other than corporate news' ("Startup valued at $2 billion to build AI
            # data centres" is AI news) when the headline's subject names that industry ("Social
            # network plans layoffs as AI costs mount" stays company news).
            rest = fitting[i] - totals[self._corporate + i]
            demoted = self._fallback[i] and any(
                not self._fallback[j]
                and (
                    headline[j] >= max(decisive, headline[i])
                    or (headline[j] > 0 and fitting[j] >= rest)
                )
                for j in fitting
            )
            leads = self._priority[i] and headline[i] >= decisive
            # on equal scores, the sector of what the headline is about ("Stainless maker flags
            # disruption due to fuel shortage" is the steelmaker's story)
            return (demoted, not leads, -fitting[i], -headline[i], i)

        ranked = sorted(fitting, key=rank)
        # further sectors need a share of the first one's score; a demoted fallback always stays
        cut = fitting[ranked[0]] * self.secondary_ratio
        kept = [ranked[0], *(i for i in ranked[1:] if fitting[i] >= cut or rank(i)[0])]
        # a story with real off-topic evidence never leads a section
        cap = math.inf if off < self.min_score else 0.99
        return Verdict(
            tuple(self.slugs[i] for i in kept),
            tuple(fitting[i] for i in kept),
            tuple(min(cap, fitting[i] / self.lead_score) for i in kept),
            all_scores,
            off,
            excluded,
        )

    def _score(
        self, title: str, summary: str, hint: str | None, url: str, trace: list[Match] | None
    ) -> tuple[list[float], list[float]]:
        """(total, headline-only) score per slot."""
        totals = [0.0] * self._slots
        vague: dict[int, set[tuple[str, ...] | str]] = {}  # ambiguous slot → its phrases
        first = self._ambiguous
        main, cause = _clauses(title)
        subject = list(
            matches(self._keywords, tokens(main), first, vague, self._tracer(trace, "title"))
        )
        for i, weight in subject:
            totals[i] += weight * self.title_weight
        # the cause a headline gives ("... as oil jumps") weighs as a teaser's words and is not
        # what the headline is about, unless the rest of the headline says nothing of any sector
        factor = 1.0 if subject else self.title_weight
        headline = list(totals) if subject else []
        for i, weight in matches(
            self._keywords,
            tokens(cause),
            first,
            vague,
            self._tracer(trace, "cause" if subject else "title"),
        ):
            totals[i] += weight * factor
        headline = headline or list(totals)
        for i, weight in matches(
            self._keywords, tokens(summary), first, vague, self._tracer(trace, "summary")
        ):
            totals[i] += weight
        if url and self._paths:
            for folder in _folders(url):
                found = self._paths.get(folder)
                if found:
                    totals[self._off] += found
                    if trace is not None:
                        trace.append(Match("off-topic", f"/{folder}/", found, "link"))
        for i in range(len(self.slugs)):
            slot = first + i
            # ambiguous words count beside a plain keyword, or two different ones together
            if totals[i] > 0 or len({_singular(p) for p in vague.get(slot, ())}) > 1:
                totals[i] += totals[slot]
                headline[i] += headline[slot]
            if totals[self._excluded + i]:  # an exclusion term appeared
                totals[i] = headline[i] = 0.0
        if hint is not None and hint in self.slugs:
            i = self.slugs.index(hint)
            if totals[i] > 0:
                totals[i] += self.hint_bonus
                if trace is not None:
                    trace.append(Match(hint, "feed's sector hint", self.hint_bonus, "feed"))
        if trace is not None:
            trace[:] = [
                m if self.title_weight == 1 or m.field != "title" else _scaled(m, self.title_weight)
                for m in trace
            ]
        return totals, headline

    def _tracer(self, trace: list[Match] | None, where: str) -> _Tracer | None:
        if trace is None:
            return None
        return _Tracer(trace, where, self._labels, self._ambiguous, self._corporate)


@dataclass(slots=True)
class _Tracer:
    """Collects the phrases ``_matches`` counts, for ``Classifier.explain``."""

    out: list[Match]
    where: str
    labels: Mapping[int, str]
    ambiguous_from: int
    ambiguous_to: int  # the ambiguous slots' end (the corporate slots follow)

    def add(self, slot: int, phrase: tuple[str, ...] | str, weight: float) -> None:
        text = phrase + "*" if isinstance(phrase, str) else " ".join(phrase)
        vague = self.ambiguous_from <= slot < self.ambiguous_to
        self.out.append(Match(self.labels[slot], text, weight, self.where, vague))


def _singular(phrase: tuple[str, ...] | str) -> tuple[str, ...] | str:
    """A phrase with its last word's plain plural ``s`` taken off: "chip" and "chips" are one
    ambiguous word, not two beside each other."""
    if isinstance(phrase, str) or not phrase:
        return phrase
    last = phrase[-1]
    plain = len(last) > 3 and last.endswith("s") and not last.endswith("ss")
    return (*phrase[:-1], last[:-1]) if plain else phrase


def _scaled(match: Match, factor: float) -> Match:
    return Match(match.rule, match.phrase, match.weight * factor, match.field, match.ambiguous)


# How the rules judge a story, as a number: a change to it (not to the configured rules, which
# are fingerprinted on their own) makes the next build judge every stored story again.
JUDGING = 4  # 2: a headline's cause ("as ..."), a host's section; 3: "due to", ties; 4: see rank


# "A as B", "A amid B", "A due to B": B is what moved A ("Asian stocks fall as oil jumps" is a
# markets story, "Oil rises as sanctions loom" an oil story); not "seen as", "such as", "as much
# as"
_CAUSE_WORDS = ("as", "amid", "due to", "because of")
_CAUSE = re.compile(rf"\s({'|'.join(_CAUSE_WORDS)})\s+(\w*)", re.I)
_MARKS = tuple(f" {words} " for words in _CAUSE_WORDS)  # a first look, before the pattern
_NOT_BEFORE = frozenset(
    ["seen", "such", "well", "much", "many", "named", "known", "same", "soon", "long", "far", "so"]
)
_NOT_AFTER = frozenset(["much", "many", "well", "long", "soon", "far", "if", "of"])


def _clauses(title: str) -> tuple[str, str]:
    """A headline's main clause and the cause it gives after "as", "amid", "due to" or
    "because of" ("" if none)."""
    lowered = title.lower()
    if not any(mark in lowered for mark in _MARKS):
        return title, ""
    for found in _CAUSE.finditer(title):
        before = title[: found.start()].rsplit(None, 1)
        if (
            found.start() >= 8
            and before
            and before[-1].lower() not in _NOT_BEFORE
            and found.group(2).lower() not in _NOT_AFTER
        ):
            return title[: found.start()], title[found.start(2) :]
    return title, ""


def _folders(url: str) -> list[str]:
    """The folders of a link's path (not its last part, the article's own slug), lower-cased,
    and a site's section named by its host's first label ("science" of science.example.org)."""
    start = url.find("://")
    begin = start + 3 if start >= 0 else 0
    slash = url.find("/", begin)
    if slash < 0:
        return []
    labels = url[begin:slash].lower().rsplit("@", 1)[-1].split(":", 1)[0].split(".")
    section = [labels[0]] if len(labels) > 2 and labels[0] not in _NO_SECTION else []
    path = url[slash:]
    for mark in "?#":
        cut = path.find(mark)
        if cut >= 0:
            path = path[:cut]
    parts = [p for p in path.lower().split("/") if p]
    return section + parts[:-1]


_NO_SECTION = frozenset(("www", "m", "amp", "mobile", "feeds", "rss"))  # a host's plain names
