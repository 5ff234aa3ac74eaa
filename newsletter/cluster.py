"""The same news from several stories, found without comparing every pair. Pure.

Two stories are **the same story** when

- they have the same canonical link; or
- their headlines are near-identical (rapidfuzz ``token_sort_ratio`` at least ``SAME_HEADLINE``,
  the same numbers in both, from two different feeds; a headline of fewer than four words must
  match exactly); or
- they report **the same event** in other words: the headlines' salient words are found in the
  other story's headline and lead (weighed by rarity: ``EVENT_SHARE`` one way and
  ``EVENT_SHARE_BOTH`` the other), and the two share at least two *rare* words (names of the
  actors, the event's own terms), e.g. "China launches biggest auto recall over door handles"
  and "Tesla and others begin record vehicle recall in China".

Stories of one **storyline** (the same dispute, the same company over days) are not merged;
``storylines`` tags each story with the pairs of uncommon headline words it shares with other
headlines ("canada" and "tariff"), so that a section shows only a few stories of one pair.

Every rule needs a shared rare word or a large share of the headline's words, so candidate pairs
come from an inverted index: a headline's rarest words (prefix filtering: a pair with Jaccard
similarity at least 0.5 must share one of the rarest ``n - ceil(n / 2) + 1`` words of each) and
posting lists of rare words. The exact rules then run on candidates only, so the work grows with
the stories, not with their pairs, and the result is the one comparing every pair would give.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from newsletter.models import Story
from newsletter.text import tokens

SAME_HEADLINE = 90  # rapidfuzz token_sort_ratio at or above which two headlines are one story
EVENT_SHARE = 0.5  # share of one headline's weight found in the other story ...
EVENT_SHARE_BOTH = 0.3  # ... and of the other headline's weight found in the first
_MIN_FUZZY_WORDS = 4  # shorter headlines must match exactly
_LEAD_WORDS = 40  # words of the teaser read as the lead
_HEADLINE_JACCARD = 0.5  # near-identical headlines share at least this (a necessary condition)

# Words that say nothing about which event a story reports.
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


@dataclass(frozen=True, slots=True)
class _Doc:
    key: str  # the normalised headline
    title: frozenset[str]  # content words of the headline
    text: frozenset[str]  # content words of the headline and the lead
    numbers: tuple[str, ...]  # the headline's numbers, sorted
    words: int  # words in the normalised headline


def _plural(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _content(words: Iterable[str]) -> frozenset[str]:
    return frozenset(_plural(w) for w in words if w not in STOPWORDS and not w.isdigit())


def _doc(story: Story) -> _Doc:
    headline = tokens(story.title)
    lead = tokens(story.summary)[:_LEAD_WORDS]
    title = _content(headline)
    return _Doc(
        key=" ".join(headline),
        title=title,
        text=title | _content(lead),
        numbers=tuple(sorted(w for w in headline if w.isdigit())),
        words=len(headline),
    )


class _Rarity:
    """How many feeds use each headline-and-lead word among the stories being clustered.

    Counted per feed, not per story, so an event that one outlet reports four times, or that
    dominates a small set, keeps its names rare.
    """

    def __init__(self, docs: Sequence[_Doc], feeds: Sequence[str]) -> None:
        seen: set[tuple[str, str]] = set()
        counts: defaultdict[str, int] = defaultdict(int)
        for doc, feed in zip(docs, feeds, strict=True):
            for word in doc.text:
                if (word, feed) not in seen:
                    seen.add((word, feed))
                    counts[word] += 1
        self.df = dict(counts)
        self.n = len(set(feeds))
        # a rare word is used by a few feeds: at most 2 % of them (5 in a small set)
        self.rare_limit = max(5, self.n // 50)

    def weight(self, word: str) -> float:
        return math.log((self.n + 1) / self.df.get(word, 1))

    def rare(self, word: str) -> bool:
        df = self.df.get(word, 0)
        return df <= self.rare_limit and 2 * df <= self.n  # never a word half the feeds use


def same_headline(a: _Doc, b: _Doc) -> bool:
    """Near-identical headlines: the same words (ratio) and the same numbers."""
    if a.key == b.key:
        return True
    if a.words < _MIN_FUZZY_WORDS or b.words < _MIN_FUZZY_WORDS or a.numbers != b.numbers:
        return False
    union = len(a.title | b.title)
    if not union or len(a.title & b.title) / union < _HEADLINE_JACCARD:
        return False
    return fuzz.token_sort_ratio(a.key, b.key, processor=None) >= SAME_HEADLINE


def same_event(a: _Doc, b: _Doc, rarity: _Rarity) -> bool:
    """Two reports of one event: salient headline words found both ways, two rare ones shared."""
    shared = (a.title & b.text) | (b.title & a.text)
    if sum(1 for w in shared if rarity.rare(w)) < 2:
        return False
    one, other = sorted((_share(a.title, b.text, rarity), _share(b.title, a.text, rarity)))
    return one >= EVENT_SHARE_BOTH and other >= EVENT_SHARE


def _share(headline: frozenset[str], other: frozenset[str], rarity: _Rarity) -> float:
    total = sum(rarity.weight(w) for w in headline)
    if not total:
        return 0.0
    return sum(rarity.weight(w) for w in headline & other) / total


class _Sets:
    """Union-find over story positions."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


def cluster(stories: Sequence[Story]) -> list[tuple[Story, ...]]:
    """Group stories that are the same news (the order of first appearance is kept)."""
    docs = [_doc(s) for s in stories]
    rarity = _Rarity(docs, [s.feed_url for s in stories])
    same = _Sets(len(stories))
    first_by_url: dict[str, int] = {}
    for i, story in enumerate(stories):
        j = first_by_url.setdefault(story.url, i)
        if j != i:
            same.join(i, j)
    for i, j in _headline_candidates(docs, rarity):
        if stories[i].feed_url != stories[j].feed_url and same_headline(docs[i], docs[j]):
            same.join(i, j)
    for i, j in _rare_candidates(docs, rarity):
        if same_event(docs[i], docs[j], rarity):
            same.join(i, j)
    return [tuple(stories[i] for i in items) for items in same.groups()]


def storylines(titles: Sequence[str]) -> list[tuple[int, ...]]:
    """For each headline, the storylines it belongs to: pairs of uncommon words it shares.

    A word is uncommon when at least two headlines and at most 5 % of them (or five) carry it
    (so "oil" on an oil-shock day is no storyline of its own); a pair of such words in two or
    more headlines is a storyline. A headline may belong to several; the relation is not
    transitive.
    """
    words = [_content(tokens(title)) for title in titles]
    df: defaultdict[str, int] = defaultdict(int)
    for title in words:
        for word in title:
            df[word] += 1
    most = max(5, len(titles) // 20)
    pairs_of = []
    counts: defaultdict[tuple[str, str], int] = defaultdict(int)
    for title in words:
        uncommon = sorted(w for w in title if 2 <= df[w] <= most)
        pairs = [(a, b) for n, a in enumerate(uncommon) for b in uncommon[n + 1 :]]
        for pair in pairs:
            counts[pair] += 1
        pairs_of.append(pairs)
    ids: dict[tuple[str, str], int] = {}
    return [
        tuple(sorted({ids.setdefault(pair, len(ids)) for pair in pairs if counts[pair] > 1}))
        for pairs in pairs_of
    ]


def _headline_candidates(docs: Sequence[_Doc], rarity: _Rarity) -> set[tuple[int, int]]:
    """Pairs that may have near-identical headlines: the same key, or a rare prefix word shared.

    Words ordered rarest first; two sets with Jaccard similarity of at least 1/2 share a word
    among the first ``n - ceil(n / 2) + 1`` of each (prefix filtering), so no pair is missed.
    """
    pairs: set[tuple[int, int]] = set()
    by_key: dict[str, int] = {}
    postings: defaultdict[str, list[int]] = defaultdict(list)
    for i, doc in enumerate(docs):
        j = by_key.setdefault(doc.key, i)
        if j != i:
            pairs.add((j, i))
        if doc.words < _MIN_FUZZY_WORDS:
            continue
        ordered = sorted(doc.title, key=lambda w: (rarity.df.get(w, 0), w))
        size = len(ordered) - math.ceil(len(ordered) * _HEADLINE_JACCARD) + 1
        for word in ordered[:size]:
            for j in postings[word]:
                pairs.add((j, i))
            postings[word].append(i)
    return pairs


def _rare_candidates(docs: Sequence[_Doc], rarity: _Rarity) -> set[tuple[int, int]]:
    """Pairs where a rare word of one headline appears in the other story (either way)."""
    by_text: defaultdict[str, list[int]] = defaultdict(list)
    for i, doc in enumerate(docs):
        for word in doc.text:
            if rarity.rare(word):
                by_text[word].append(i)
    pairs: set[tuple[int, int]] = set()
    for i, doc in enumerate(docs):
        for word in doc.title:
            for j in by_text.get(word, ()):
                if j != i:
                    pairs.add((min(i, j), max(i, j)))
    return pairs


def brute_force(stories: Sequence[Story]) -> list[tuple[Story, ...]]:
    """The same clusters by comparing every pair: the reference the index must agree with."""
    docs = [_doc(s) for s in stories]
    rarity = _Rarity(docs, [s.feed_url for s in stories])
    same = _Sets(len(stories))
    for i in range(len(stories)):
        for j in range(i + 1, len(stories)):
            a, b = stories[i], stories[j]
            if (
                a.url == b.url
                or (a.feed_url != b.feed_url and same_headline(docs[i], docs[j]))
                or same_event(docs[i], docs[j], rarity)
            ):
                same.join(i, j)
    return [tuple(stories[i] for i in items) for items in same.groups()]
