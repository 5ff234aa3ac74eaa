"""Sectors for a story, ranked, from the configured keyword rules. Pure.

Text is split into lower-case word tokens (letters and digits apart: "600MW" is "600", "mw"); a
keyword or phrase matches a run of whole tokens, so "ev" never matches inside "every" and "rare
earth" also matches "rare-earth". A keyword ending in ``*`` matches any token that starts with it;
a plain "s" plural matches too. Each phrase counts at most twice per field, and a headline match
counts ``title_weight`` times. A feed's sector hint adds ``hint_bonus`` to that sector when the
text already fits it; any exclusion term rules a sector out. The off-topic rules score like a
sector: a sector must beat them. Sectors that reach ``min_score`` and at least
``secondary_ratio`` of the best one are returned, best first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_MAX_COUNT = 2  # occurrences of one phrase counted per field


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def headline_key(title: str) -> str:
    """A headline with case and punctuation gone, for comparing headlines."""
    return " ".join(tokens(title))


@dataclass(frozen=True, slots=True)
class SectorRule:
    slug: str
    keywords: Mapping[str, float]
    exclude: Sequence[str] = ()
    # A fallback sector (Business & Politics) yields first place to an industry sector whose
    # headline alone is decisive (scores twice ``min_score``): corporate news goes to its industry.
    fallback: bool = False


@dataclass(slots=True)
class _Index:
    """Keyword n-grams → (sector index, weight); built once per set of rules."""

    exact: dict[tuple[str, ...], list[tuple[int, float]]] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    starts: set[str] = field(default_factory=set)  # first tokens of multi-token phrases
    prefix_sizes: tuple[int, ...] = ()  # the lengths of the prefixes, for lookups by slice
    longest: int = 1


class Classifier:
    """Compiled rules; call ``classify`` for each story."""

    def __init__(
        self,
        rules: Sequence[SectorRule],
        *,
        off_topic: Mapping[str, float] | None = None,
        title_weight: float = 2.0,
        min_score: float = 1.0,
        hint_bonus: float = 0.5,
        secondary_ratio: float = 0.0,
    ) -> None:
        self.slugs = tuple(rule.slug for rule in rules)
        self._fallback = tuple(rule.fallback for rule in rules)
        self.title_weight = title_weight
        self.min_score = min_score
        self.hint_bonus = hint_bonus
        self.secondary_ratio = secondary_ratio
        self._off = len(rules)  # the off-topic rules score in the slot after the sectors
        # one index for everything, so each field is scanned once: sector i's exclusions score
        # in slot ``_excluded + i``
        self._excluded = len(rules) + 1
        self._keywords = _Index()
        for i, rule in enumerate(rules):
            for phrase, weight in rule.keywords.items():
                _add(self._keywords, phrase, i, weight)
            for phrase in rule.exclude:
                _add(self._keywords, phrase, self._excluded + i, 1.0)
        for phrase, weight in (off_topic or {}).items():
            _add(self._keywords, phrase, self._off, weight)

    def scores(self, title: str, summary: str = "", hint: str | None = None) -> dict[str, float]:
        """Score per sector with a match, before thresholds; ``""`` holds the off-topic score."""
        totals, _ = self._score(title, summary, hint)
        out = {slug: score for slug, score in zip(self.slugs, totals, strict=False) if score > 0}
        if totals[self._off] > 0:
            out[""] = totals[self._off]
        return out

    def _score(self, title: str, summary: str, hint: str | None) -> tuple[list[float], list[float]]:
        """(total, headline-only) score per sector; the last slot is the off-topic score."""
        totals = [0.0] * (self._excluded * 2)
        for i, weight in _matches(self._keywords, tokens(title)):
            totals[i] += weight * self.title_weight
        headline = list(totals)
        for i, weight in _matches(self._keywords, tokens(summary)):
            totals[i] += weight
        for i in range(len(self.slugs)):
            if totals[self._excluded + i]:  # an exclusion term appeared
                totals[i] = headline[i] = 0.0
        if hint is not None and hint in self.slugs:
            i = self.slugs.index(hint)
            if totals[i] > 0:
                totals[i] += self.hint_bonus
        return totals, headline

    def classify(self, title: str, summary: str = "", hint: str | None = None) -> tuple[str, ...]:
        """Sector slugs the story fits, best first; empty when it fits none."""
        totals, headline = self._score(title, summary, hint)
        floor = max(self.min_score, totals[self._off] + 1e-9)
        fitting = {i: score for i, score in enumerate(totals[: self._off]) if score >= floor}
        if not fitting:
            return ()
        decisive = 2 * self.min_score

        def rank(i: int) -> tuple[bool, float, int]:
            # a fallback sector goes behind any sector with a decisive headline of its own
            demoted = self._fallback[i] and any(
                not self._fallback[j] and headline[j] >= decisive for j in fitting
            )
            return (demoted, -fitting[i], i)

        ranked = sorted(fitting, key=rank)
        # further sectors need a share of the first one's score; a demoted fallback always stays
        cut = fitting[ranked[0]] * self.secondary_ratio
        kept = [ranked[0], *(i for i in ranked[1:] if fitting[i] >= cut or rank(i)[0])]
        return tuple(self.slugs[i] for i in kept)


def _add(index: _Index, phrase: str, sector: int, weight: float) -> None:
    wildcard = phrase.rstrip().endswith("*")
    words = tokens(phrase)
    if not words:
        return
    if wildcard and len(words) == 1:
        index.prefixes.setdefault(words[0], []).append((sector, weight))
        index.prefix_sizes = tuple(sorted({len(p) for p in index.prefixes}))
        return
    key = tuple(words)
    index.exact.setdefault(key, []).append((sector, weight))
    if len(key) > 1:
        index.starts.add(key[0])
        index.longest = max(index.longest, len(key))


def _matches(index: _Index, words: list[str]) -> Iterable[tuple[int, float]]:
    """Each (sector, weight) matched, a phrase counted at most ``_MAX_COUNT`` times.

    Within one sector the longest phrase wins: the words of "stock market" do not count again
    as "stock" and "market*" for the same sector.
    """
    found: list[tuple[int, int, tuple[str, ...] | str, list[tuple[int, float]]]] = []
    prefixes = tuple(index.prefixes)
    exact = index.exact
    for pos, word in enumerate(words):
        hits = exact.get((word,))
        if hits is not None:
            found.append((pos, 1, (word,), hits))
        elif word.endswith("s") and (word[:-1],) in exact:
            found.append((pos, 1, (word[:-1],), exact[(word[:-1],)]))  # a plain plural
        if word in index.starts:
            for n in range(2, index.longest + 1):
                key = tuple(words[pos : pos + n])
                if len(key) < n:
                    break
                hits = exact.get(key)
                if hits is None and key[-1].endswith("s"):
                    key = (*key[:-1], key[-1][:-1])
                    hits = exact.get(key)
                if hits is not None:
                    found.append((pos, n, key, hits))
        if prefixes and word.startswith(prefixes):
            for size in index.prefix_sizes:
                hits = index.prefixes.get(word[:size])
                if hits is not None:
                    found.append((pos, 1, word[:size], hits))
    if not found:
        return ()
    found.sort(key=lambda item: -item[1])  # longest first
    covered: defaultdict[int, set[int]] = defaultdict(set)  # sector → word positions used
    counts: dict[tuple[int, tuple[str, ...] | str], int] = {}
    merged: defaultdict[int, float] = defaultdict(float)
    for pos, length, phrase, hits in found:
        span = range(pos, pos + length)
        for sector, weight in hits:
            used = covered[sector]
            if any(i in used for i in span):
                continue
            used.update(span)
            seen = counts.get((sector, phrase), 0)
            if seen < _MAX_COUNT:
                counts[(sector, phrase)] = seen + 1
                merged[sector] += weight
    return merged.items()
