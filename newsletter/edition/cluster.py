"""The same news from several stories, found without comparing every pair. Pure.

Two stories are **the same story** when

- they have the same canonical link; or
- their headlines are near-identical (rapidfuzz ``token_sort_ratio`` at least ``SAME_HEADLINE``,
  the same numbers in both, from two different feeds; a headline of fewer than four words must
  match exactly); or
- they report **the same event** in other words (from two different feeds: one feed's reports
  are other news, or one storyline): the headlines' salient words are found in the other
  story's headline and lead (weighed by rarity: ``EVENT_SHARE`` one way and
  ``EVENT_SHARE_BOTH`` the other), and the two share at least two *rare* words (names of the
  actors, the event's own terms), e.g. "China launches biggest auto recall over door handles"
  and "Tesla and others begin record vehicle recall in China"; unless neither writes a name the
  other does ("Canada vows to answer US tariffs", "Australia vows to answer China tariffs").

Stories of one **storyline** (the same dispute, the same company over days) are not merged;
``storylines`` tags each story with the pairs of uncommon headline words it shares with other
headlines ("canada" and "tariff"), so that a section shows only a few stories of one pair.

A word rare by feeds but in more than ``_MOST_STORIES`` stories (one feed's flood of one shape
of headline) is not rare. Every rule needs a shared rare word or a large share of the
headline's words, so candidate pairs come from an inverted index: a headline's rarest words
(prefix filtering: a pair with Jaccard similarity at least 0.5 must share one of the rarest
``n - ceil(n / 2) + 1`` words of each) and posting lists of rare words. The exact rules then
run on candidates only, so the work grows with the stories, not with their pairs, and the
result is the one comparing every pair would give.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, combinations

from rapidfuzz import fuzz, process

from newsletter.edition.unionfind import UnionFind
from newsletter.models import Story
from newsletter.runtime import paused_collector
from newsletter.text import STOPWORDS, names_written, tokens

SAME_HEADLINE = 90  # rapidfuzz token_sort_ratio at or above which two headlines are one story
EVENT_SHARE = 0.5  # share of one headline's weight found in the other story ...
EVENT_SHARE_BOTH = 0.3  # ... and of the other headline's weight found in the first
_MIN_FUZZY_WORDS = 4  # shorter headlines must match exactly
_LEAD_WORDS = 40  # words of the teaser read as the lead
_LEAD_CHARS = 600  # characters of the teaser those words are looked for in
_HEADLINE_JACCARD = 0.5  # near-identical headlines share at least this (a necessary condition)
# a headline word more than this share of the feeds use (and more than _COMMON_MIN feeds) is
# too common to make two headlines candidates by itself: two near-identical headlines of such
# words only are found by their exact key (on real feeds a headline carries a name or another
# rarer word; it keeps the index near-linear on a small vocabulary, where every word is common)
_MOST_STORIES = 60  # a word rare by feeds, in more stories than this, is one feed's flood
_COMMON_SHARE = 0.25
_COMMON_MIN = 50


@dataclass(frozen=True, slots=True)
class _Doc:
    key: str  # the normalised headline
    title: frozenset[str]  # content words of the headline
    text: frozenset[str]  # content words of the headline and the lead
    numbers: tuple[str, ...]  # the headline's numbers, sorted
    words: int  # words in the normalised headline
    raw: tuple[str, str]  # the headline and the lead as written (their names: ``_strangers``)


def _plural(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


class _Words:
    """Each distinct word's content form ("" for a stopword or a number), worked out once."""

    def __init__(self) -> None:
        self._forms: dict[str, str] = {}

    def content(self, words: Sequence[str]) -> frozenset[str]:
        forms = self._forms
        try:
            found = {forms[word] for word in words}
        except KeyError:
            for word in words:
                if word not in forms:
                    stop = word in STOPWORDS or word.isdigit()
                    forms[word] = "" if stop else _plural(word)
            found = {forms[word] for word in words}
        found.discard("")
        return frozenset(found)

    def doc(self, story: Story) -> _Doc:
        headline = tokens(story.title)
        title = self.content(headline)
        lead = story.summary[:_LEAD_CHARS]
        return _Doc(
            key=" ".join(headline),
            title=title,
            # the lead's words (a long teaser is cut first: 40 words fit in far fewer characters)
            text=title | self.content(tokens(lead)[:_LEAD_WORDS]),
            numbers=tuple(sorted(filter(str.isdigit, headline))),
            words=len(headline),
            raw=(story.title, lead),
        )


def _docs(stories: Sequence[Story]) -> list[_Doc]:
    words = _Words()
    return [words.doc(s) for s in stories]


class _Rarity:
    """How many feeds use each headline-and-lead word among the stories being clustered.

    Counted per feed, not per story, so an event that one outlet reports four times, or that
    dominates a small set, keeps its names rare.
    """

    def __init__(self, docs: Sequence[_Doc], feeds: Sequence[str]) -> None:
        by_feed: defaultdict[str, set[str]] = defaultdict(set)
        for doc, feed in zip(docs, feeds, strict=True):
            by_feed[feed].update(doc.text)
        self.df = dict(Counter(chain.from_iterable(by_feed.values())))
        self.n = len(by_feed)
        # a rare word is used by a few feeds: at most 2 % of them (5 in a small set)
        self.rare_limit = max(5, self.n // 50)
        # ... and is in a few stories: one feed's flood of one shape of headline names nothing
        # (its words would pair every story with every other)
        in_stories = Counter(w for doc in docs for w in doc.text if self.df[w] <= self.rare_limit)
        self.flooded = frozenset(w for w, n in in_stories.items() if n > _MOST_STORIES)

    def weight(self, word: str) -> float:
        return math.log((self.n + 1) / self.df.get(word, 1))

    def rare(self, word: str) -> bool:
        df = self.df.get(word, 0)
        # never a word half the feeds use
        return df <= self.rare_limit and 2 * df <= self.n and word not in self.flooded


def same_headline(a: _Doc, b: _Doc) -> bool:
    """Near-identical headlines: the same words (ratio) and the same numbers."""
    if a.key == b.key:
        return True
    if a.words < _MIN_FUZZY_WORDS or b.words < _MIN_FUZZY_WORDS or a.numbers != b.numbers:
        return False
    shared = len(a.title & b.title)
    union = len(a.title) + len(b.title) - shared
    if not union or shared < _HEADLINE_JACCARD * union:
        return False
    return fuzz.token_sort_ratio(a.key, b.key, processor=None) >= SAME_HEADLINE


def same_event(a: _Doc, b: _Doc, rarity: _Rarity) -> bool:
    """Two reports of one event: salient headline words found both ways, two rare ones shared."""
    shared = (a.title & b.text) | (b.title & a.text)
    if sum(1 for w in shared if rarity.rare(w)) < 2:
        return False
    one, other = sorted((_share(a.title, b.text, rarity), _share(b.title, a.text, rarity)))
    return one >= EVENT_SHARE_BOTH and other >= EVENT_SHARE and not _strangers(a, b)


def _strangers(a: _Doc, b: _Doc) -> bool:
    """Whether each story names someone and neither writes a name the other does: the same
    words about other actors (only looked at for the pairs the other rules would join)."""
    names_a, names_b = names_written(*a.raw), names_written(*b.raw)
    if not names_a or not names_b:
        return False
    words_a, words_b = set(tokens(" ".join(a.raw))), set(tokens(" ".join(b.raw)))
    return not (names_a & words_b) and not (names_b & words_a)


def _share(headline: frozenset[str], other: frozenset[str], rarity: _Rarity) -> float:
    total = sum(rarity.weight(w) for w in headline)
    if not total:
        return 0.0
    return sum(rarity.weight(w) for w in headline & other) / total


def cluster(stories: Sequence[Story]) -> list[tuple[Story, ...]]:
    """Group stories that are the same news (the order of first appearance is kept).

    Stories that carry a stored ``cluster`` (found on an earlier run) stay with the other
    stories of their cluster and are not compared with each other again; only pairs with at
    least one new story are. With no stored clusters the result is ``brute_force``'s.
    """
    with paused_collector():
        return _cluster(stories)


def _cluster(stories: Sequence[Story]) -> list[tuple[Story, ...]]:
    same = UnionFind(len(stories))
    first: dict[str, int] = {}
    for i, story in enumerate(stories):
        for key in (story.url, f"cluster:{story.cluster}" if story.cluster else ""):
            if key:
                j = first.setdefault(key, i)
                if j != i:
                    same.join(i, j)
    known = [bool(s.cluster) for s in stories]
    if not all(known):
        docs = _docs(stories)
        rarity = _Rarity(docs, [s.feed_url for s in stories])
        feeds = [s.feed_url for s in stories]
        for i, j in _headline_candidates(docs, rarity):
            if (
                not (known[i] and known[j])
                and feeds[i] != feeds[j]
                and same_headline(docs[i], docs[j])
            ):
                same.join(i, j)
        for i, j in _rare_candidates(docs, rarity):  # one feed's reports are other news
            other = feeds[i] != feeds[j]
            if not (known[i] and known[j]) and other and same_event(docs[i], docs[j], rarity):
                same.join(i, j)
    return [tuple(stories[i] for i in items) for items in same.groups()]


def cluster_ids(groups: Iterable[Sequence[Story]]) -> dict[str, str]:
    """The cluster id each story of ``groups`` should carry, for those whose id changes: the
    smallest a cluster already had (two joined by a new story become one), or of its stories."""
    changed: dict[str, str] = {}
    for group in groups:
        had = [s.cluster for s in group if s.cluster]
        name = min(had) if had else min(s.id for s in group)
        changed.update((s.id, name) for s in group if s.cluster != name)
    return changed


def storylines(titles: Sequence[str]) -> list[tuple[int, ...]]:
    """For each headline, the storylines it belongs to: pairs of uncommon words it shares.

    A word is uncommon when at least two headlines and at most 5 % of them (or five) carry it
    (so "oil" on an oil-shock day is no storyline of its own); a pair of such words in two or
    more headlines is a storyline. A headline may belong to several; the relation is not
    transitive.
    """
    forms = _Words()
    words = [forms.content(tokens(title)) for title in titles]
    df = Counter(chain.from_iterable(words))
    most = max(5, len(titles) // 20)
    pairs_of = [
        list(combinations(sorted(w for w in title if 2 <= df[w] <= most), 2)) for title in words
    ]
    counts = Counter(chain.from_iterable(pairs_of))
    ids: dict[tuple[str, str], int] = {}
    return [
        tuple(sorted({ids.setdefault(pair, len(ids)) for pair in pairs if counts[pair] > 1}))
        for pairs in pairs_of
    ]


def _same_key_pairs(docs: Sequence[_Doc]) -> set[tuple[int, int]]:
    """Each headline paired with the first one of the same key."""
    pairs: set[tuple[int, int]] = set()
    by_key: dict[str, int] = {}
    for i, doc in enumerate(docs):
        j = by_key.setdefault(doc.key, i)
        if j != i:
            pairs.add((j, i))
    return pairs


def _headline_candidates(docs: Sequence[_Doc], rarity: _Rarity) -> set[tuple[int, int]]:
    """Pairs that may have near-identical headlines: the same key, or enough words shared.

    Near-identical headlines carry the same numbers, so only headlines with the same numbers
    are compared (blocking). Within a block this is PPJoin: each headline's words are ordered
    rarest first, headlines are taken from the fewest words to the most, and two word sets with
    Jaccard similarity of at least 1/2 must share a word among the first ``n - ceil(n / 2) + 1``
    words of the longer one (the probe) and the first ``m - ceil(2m / 3) + 1`` of the shorter
    (the index); a pair whose shared words so far, plus the words left after the latest shared
    one, cannot reach that similarity is dropped (positional filtering), and the rest are
    checked exactly. A pair sharing only words too common to index (``_common_from``) is found
    by its key alone; no other pair that could pass ``same_headline`` is missed.
    """
    pairs = _same_key_pairs(docs)
    t = _HEADLINE_JACCARD
    # every word's place in one order, rarest first (the same order for every headline); a
    # posting is keyed by block and word as one integer, cheaper to hash than a tuple
    words = sorted(rarity.df, key=lambda w: (rarity.df[w], w))
    rank = {w: n for n, w in enumerate(words)}
    common = _common_from(rarity)  # the rank from which words are too common to index
    blocks: dict[tuple[str, ...], int] = {}
    postings: dict[int, list[tuple[int, int, int]]] = {}
    needs: dict[int, int] = {}  # shared words two headlines of n + m words need in all
    order = sorted(
        (i for i, d in enumerate(docs) if d.words >= _MIN_FUZZY_WORDS and d.title),
        key=lambda i: (len(docs[i].title), i),
    )
    for i in order:
        doc = docs[i]
        n = len(doc.title)
        base = blocks.setdefault(doc.numbers, len(blocks)) * len(words)
        ordered = sorted(map(rank.__getitem__, doc.title))
        indexed = n - math.ceil(2 * t * n / (1 + t) - 1e-9) + 1
        overlap: dict[int, int] = {}  # shared words so far; -1 once the pair cannot make it
        for p in range(min(n - math.ceil(n * t - 1e-9) + 1, bisect_left(ordered, common))):
            key = base + ordered[p]
            posting = postings.get(key)
            if posting is not None:
                left = n - p - 1  # this headline's words after this one
                for j, q, m in posting:
                    have = overlap.get(j, 0)
                    if have < 0:
                        continue
                    need = needs.get(n + m)
                    if need is None:
                        need = needs[n + m] = math.ceil(t * (n + m) / (1 + t) - 1e-9)
                    rest = m - q - 1 if m - q - 1 < left else left
                    overlap[j] = have + 1 if have + 1 + rest >= need else -1
            if p < indexed:
                if posting is None:
                    postings[key] = [(i, p, n)]
                else:
                    posting.append((i, p, n))
        title = doc.title
        for j, shared in overlap.items():  # the exact share of words, before any pair is kept
            if shared > 0:
                other = docs[j].title
                if len(title & other) >= needs[n + len(other)]:
                    pairs.add((j, i) if j < i else (i, j))
    return pairs


def _common_from(rarity: _Rarity) -> int:
    """The rank (in ``_headline_candidates``' order, rarest first) from which words are too
    common to index: those more than ``_COMMON_SHARE`` of the feeds use (and more than
    ``_COMMON_MIN``). Their posting lists would grow with the window: quadratic on a small
    vocabulary, where every word is common."""
    limit = max(_COMMON_MIN, int(rarity.n * _COMMON_SHARE))
    return sum(1 for n in rarity.df.values() if n <= limit)


def _rare_candidates(docs: Sequence[_Doc], rarity: _Rarity) -> set[tuple[int, int]]:
    """Pairs whose headline-and-lead words share at least two rare words.

    Every word ``same_event`` counts is in both stories' text, so a pair with fewer than two
    rare words in common cannot be the same event, and is never looked at.
    """
    rare = frozenset(w for w in rarity.df if rarity.rare(w))
    by_text: defaultdict[str, list[int]] = defaultdict(list)
    pairs: set[tuple[int, int]] = set()
    for i, doc in enumerate(docs):
        counts: defaultdict[int, int] = defaultdict(int)
        for word in doc.text & rare:
            posting = by_text[word]
            for j in posting:
                counts[j] += 1
            posting.append(i)
        pairs.update((j, i) for j, n in counts.items() if n >= 2)
    return pairs


def brute_force(stories: Sequence[Story]) -> list[tuple[Story, ...]]:
    """The same clusters by comparing every pair: the reference the index must agree with."""
    docs = _docs(stories)
    rarity = _Rarity(docs, [s.feed_url for s in stories])
    same = UnionFind(len(stories))
    for i in range(len(stories)):
        for j in range(i + 1, len(stories)):
            a, b = stories[i], stories[j]
            if a.url == b.url or (
                a.feed_url != b.feed_url
                and (same_headline(docs[i], docs[j]) or same_event(docs[i], docs[j], rarity))
            ):
                same.join(i, j)
    return [tuple(stories[i] for i in items) for items in same.groups()]


def similar_headline(key: str, others: Sequence[str]) -> bool:
    """Whether a normalised headline is (near-)identical to one of ``others``, with the same
    numbers: what an earlier edition already carried."""
    if key in others:
        return True
    if len(key.split()) < _MIN_FUZZY_WORDS:
        return False
    mine = sorted(w for w in key.split() if w.isdigit())
    found = process.extract(
        key,
        others,
        scorer=fuzz.token_sort_ratio,
        processor=None,
        score_cutoff=SAME_HEADLINE,
        limit=None,
    )
    return any(sorted(w for w in other.split() if w.isdigit()) == mine for other, _, _ in found)
