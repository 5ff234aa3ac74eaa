"""The keyword index of the sector rules: phrases → (slot, weight), and the matching of a
field's tokens against it (``rules.Classifier`` owns the slots). Pure.

A keyword or phrase matches a run of whole tokens; one ending in ``*`` matches any token that
starts with it (a phrase's last word: "export licen*"); a plain "s" plural matches too. Each
phrase counts at most ``MAX_COUNT`` times per field, and within one slot the longest phrase
wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from newsletter.text import tokens

MAX_COUNT = 2  # occurrences of one phrase counted per field
_HEAD = 3  # letters of a word looked up before its prefixes are


class Tracer(Protocol):
    """Told each phrase counted (``Classifier.explain``)."""

    def add(self, slot: int, phrase: tuple[str, ...] | str, weight: float) -> None: ...


@dataclass(slots=True)
class KeywordIndex:
    """Keyword n-grams → (slot, weight); built once per set of rules."""

    exact: dict[tuple[str, ...], list[tuple[int, float]]] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    starts: set[str] = field(default_factory=set)  # first tokens of multi-token phrases
    prefix_sizes: tuple[int, ...] = ()  # the lengths of the prefixes, for lookups by slice
    # the first three letters of every prefix (all of a shorter one): a cheap first test
    prefix_heads: frozenset[str] = frozenset()
    longest: int = 1
    # a phrase whose last word is a prefix ("export licen*"): its other words → (prefix, hit)
    wild: dict[tuple[str, ...], list[tuple[str, int, float]]] = field(default_factory=dict)


def add_phrase(index: KeywordIndex, phrase: str, slot: int, weight: float) -> None:
    wildcard = phrase.rstrip().endswith("*")
    words = tokens(phrase)
    if not words:
        return
    if wildcard and len(words) == 1:
        index.prefixes.setdefault(words[0], []).append((slot, weight))
        index.prefix_sizes = tuple(sorted({len(p) for p in index.prefixes}))
        index.prefix_heads = frozenset(p[:_HEAD] for p in index.prefixes)
        return
    key = tuple(words)
    if wildcard:  # "export licen*": the last word is a prefix ("licences", "licensing")
        index.wild.setdefault(key[:-1], []).append((key[-1], slot, weight))
    else:
        index.exact.setdefault(key, []).append((slot, weight))
    if len(key) > 1:
        index.starts.add(key[0])
        index.longest = max(index.longest, len(key))


_Found = list[tuple[int, int, tuple[str, ...] | str, list[tuple[int, float]]]]


def _phrases(index: KeywordIndex, words: list[str]) -> _Found:
    """Every phrase of the index found in ``words``: (position, length, phrase, its hits)."""
    found: _Found = []
    heads = index.prefix_heads
    short = any(size < _HEAD for size in index.prefix_sizes)
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
                for prefix, slot, weight in index.wild.get(key[:-1], ()):
                    if words[pos + n - 1].startswith(prefix):
                        found.append((pos, n, (*key[:-1], f"{prefix}*"), [(slot, weight)]))
        if heads and (word[:_HEAD] in heads or short):
            for size in index.prefix_sizes:
                if size > len(word):
                    break
                hits = index.prefixes.get(word[:size])
                if hits is not None:
                    found.append((pos, 1, word[:size], hits))
    return found


def matches(
    index: KeywordIndex,
    words: list[str],
    vague_from: int,
    vague: dict[int, set[tuple[str, ...] | str]],
    tracer: Tracer | None = None,
) -> Iterable[tuple[int, float]]:
    """Each (slot, weight) matched, a phrase counted at most ``MAX_COUNT`` times.

    The phrases of slots from ``vague_from`` on (ambiguous keywords) are collected in ``vague``.

    Within one slot the longest phrase wins: the words of "stock market" do not count again
    as "stock" and "market*" for the same sector.
    """
    found = _phrases(index, words)
    if not found:
        return ()
    if len(found) > 1:
        found.sort(key=lambda item: -item[1])  # longest first
    covered: defaultdict[int, set[int]] = defaultdict(set)  # slot → word positions used
    counts: dict[tuple[int, tuple[str, ...] | str], int] = {}
    merged: defaultdict[int, float] = defaultdict(float)
    for pos, length, phrase, hits in found:
        span = range(pos, pos + length)
        for slot, weight in hits:
            used = covered[slot]
            if length == 1:  # the common case, without building a span
                if pos in used:
                    continue
                used.add(pos)
            elif any(i in used for i in span):
                continue
            else:
                used.update(span)
            seen = counts.get((slot, phrase), 0)
            if seen < MAX_COUNT:
                counts[(slot, phrase)] = seen + 1
                merged[slot] += weight
                if slot >= vague_from:
                    vague.setdefault(slot, set()).add(phrase)
                if tracer is not None:
                    tracer.add(slot, phrase, weight)
    return merged.items()
