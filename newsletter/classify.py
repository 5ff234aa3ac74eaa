"""Sectors for a story, ranked, from the configured keyword rules. Pure.

Text is split into lower-case word tokens; a keyword or phrase matches a run of whole tokens, so
"ev" never matches inside "every" and "rare earth" also matches "rare-earth". A keyword ending in
``*`` matches any token that starts with it. Headline matches count ``title_weight`` times; a feed's
sector hint adds ``hint_bonus`` to that sector when the text already fits it; any exclusion term
rules a sector out. Sectors scoring at least ``min_score`` are returned, best first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True, slots=True)
class SectorRule:
    slug: str
    keywords: dict[str, float]
    exclude: Sequence[str] = ()


@dataclass(slots=True)
class _Index:
    """Keyword n-grams → (sector index, weight); built once per set of rules."""

    exact: dict[tuple[str, ...], list[tuple[int, float]]] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    starts: set[str] = field(default_factory=set)  # first tokens of multi-token phrases
    longest: int = 1


class Classifier:
    """Compiled rules; call ``classify`` for each story."""

    def __init__(
        self,
        rules: Sequence[SectorRule],
        *,
        title_weight: float = 2.0,
        min_score: float = 1.0,
        hint_bonus: float = 0.5,
    ) -> None:
        self.slugs = tuple(rule.slug for rule in rules)
        self.title_weight = title_weight
        self.min_score = min_score
        self.hint_bonus = hint_bonus
        self._keywords = _Index()
        self._excludes = _Index()
        for i, rule in enumerate(rules):
            for phrase, weight in rule.keywords.items():
                _add(self._keywords, phrase, i, weight)
            for phrase in rule.exclude:
                _add(self._excludes, phrase, i, 1.0)

    def scores(self, title: str, summary: str = "", hint: str | None = None) -> dict[str, float]:
        """Score per sector (only sectors with a match), before the threshold."""
        totals = [0.0] * len(self.slugs)
        title_tokens = tokens(title)
        summary_tokens = tokens(summary)
        for i, weight in _matches(self._keywords, title_tokens):
            totals[i] += weight * self.title_weight
        for i, weight in _matches(self._keywords, summary_tokens):
            totals[i] += weight
        for i, _ in _matches(self._excludes, title_tokens):
            totals[i] = 0.0
        for i, _ in _matches(self._excludes, summary_tokens):
            totals[i] = 0.0
        if hint is not None and hint in self.slugs:
            i = self.slugs.index(hint)
            if totals[i] > 0:
                totals[i] += self.hint_bonus
        return {slug: score for slug, score in zip(self.slugs, totals, strict=True) if score > 0}

    def classify(self, title: str, summary: str = "", hint: str | None = None) -> tuple[str, ...]:
        """Sector slugs the story fits, best first; empty when it fits none."""
        scored = self.scores(title, summary, hint)
        ranked = sorted(
            (slug for slug, score in scored.items() if score >= self.min_score),
            key=lambda slug: (-scored[slug], self.slugs.index(slug)),
        )
        return tuple(ranked)


def _add(index: _Index, phrase: str, sector: int, weight: float) -> None:
    wildcard = phrase.rstrip().endswith("*")
    words = tokens(phrase)
    if not words:
        return
    if wildcard and len(words) == 1:
        index.prefixes.setdefault(words[0], []).append((sector, weight))
        return
    key = tuple(words)
    index.exact.setdefault(key, []).append((sector, weight))
    if len(key) > 1:
        index.starts.add(key[0])
        index.longest = max(index.longest, len(key))


def _matches(index: _Index, words: list[str]) -> Iterable[tuple[int, float]]:
    """Each (sector, weight) matched; a phrase is counted once per story field."""
    seen: dict[tuple[str, ...] | str, list[tuple[int, float]]] = {}
    prefixes = tuple(index.prefixes)
    for pos, word in enumerate(words):
        hits = index.exact.get((word,))
        if hits is not None:
            seen[(word,)] = hits
        elif word.endswith("s") and (word[:-1],) in index.exact:
            seen[(word[:-1],)] = index.exact[(word[:-1],)]  # simple plural
        if word in index.starts:
            for n in range(2, index.longest + 1):
                key = tuple(words[pos : pos + n])
                if len(key) < n:
                    break
                hits = index.exact.get(key)
                if hits is None and key[-1].endswith("s"):
                    key = (*key[:-1], key[-1][:-1])
                    hits = index.exact.get(key)
                if hits is not None:
                    seen[key] = hits
        if prefixes and word.startswith(prefixes):
            for prefix in prefixes:
                if word.startswith(prefix):
                    seen[prefix] = index.prefixes[prefix]
    merged: defaultdict[int, float] = defaultdict(float)
    for hits in seen.values():
        for sector, weight in hits:
            merged[sector] += weight
    return merged.items()
