"""Storylines: the reports of one developing story (one tariff dispute, one strike) across
wording, outlets and days, grouped so that an edition shows the storyline once. Pure.

Two stories (each already a cluster of the same report, ``cluster.py``) are of one storyline
when, within ``WINDOW`` of each other, their headlines share at least two *uncommon* words
(carried by a few stories, never by a large share of the day's, and not words of any day's news
such as "hits", "high" or "talks") and one of them names an actor or a place either story
writes (capitalised within a sentence of its lead, or of a headline not in title case): the
name's head, its last word ("Kovac" of "Minister Anna Kovac"), or two of its words. The words of
one name count once ("Wall Street", "Air Force"), and another word of a longer name is no name
("space" of "European Space Agency"). Storylines are the groups this relation joins: "US
hits Canada with tariffs", "Canada sets counter-tariffs" and "Canada trade talks stall" are
one; "Copper hits 18-month high" and "Nickel hits 18-month high" are two. Headlines that share
only one uncommon word, a name at most ``FEW`` headlines write, are one storyline when both leads
name two more actors or places, each a name of its own, one of them in a headline too
("Harbourline to hold talks on Castor deal" and "Governor prefers Harbourline settlement", both
leads naming Ruritania and Castor Studios); a company's chief is one name, and a dateline ("NEW
YORK, Aug 21 :") none.

Candidate pairs come from the postings of uncommon words only, and a word carried by more than
``MAX_POSTING`` stories is not uncommon, so the work grows with the stories, not with their
pairs (``brute_force`` is the reference: the same groups by comparing every pair).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from itertools import combinations

from newsletter.edition.thin import thin_reason
from newsletter.edition.unionfind import UnionFind
from newsletter.models import SectorFit, Story
from newsletter.text import MID_CAPITAL, STOPWORDS, title_case, tokens, without_dateline

WINDOW = timedelta(hours=72)  # reports further apart are two storylines
MAX_POSTING = 60  # a word in more stories than this names no one storyline
FEW = 5  # a name in at most this many headlines may join two by what their leads name
_LEAD_WORDS = 40  # words of the teaser read as the lead


# a run of capitalised words ("Middle East", "Carney"), and whether it starts a sentence
_NAME = re.compile(
    r"(^|[.!?:;\"'\u201c\u2018(\[]\s*)?([A-Z][\w'\u2019-]*(?:\s+[A-Z][\w'\u2019-]*)*)"
)
_POSSESSIVE = re.compile(r"['\u2019]s\b")
_CAPITAL = re.compile(r"\b[A-Z][\w\u2019'-]*")
# words of any day's news: two of them shared say nothing of one storyline
# fmt: off
_GENERIC = frozenset([
    "attack", "strike", "talk", "deal", "plan", "price", "share", "market", "stock",
    "record", "high", "low", "rise", "fall", "cut", "hit", "war", "warn", "say", "new",
    "year", "month", "week", "day", "report", "first", "last", "amid", "top", "big",
    "biggest", "ahead", "again", "more", "million", "billion", "percent", "growth", "data",
    "news", "update", "official", "government", "president", "minister", "leader", "country",
    "world", "global", "state", "people", "company", "firm", "group", "chief", "call",
    "back", "set", "take", "make", "face", "see", "look", "near", "win", "lose", "end",
    "start", "open", "close", "deadline", "investor", "risk", "conflict", "crisis",
    "concern", "worry", "shock", "fear", "hope",
])
_SHORT_MONTHS = (
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
)
# fmt: on
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august")
_NOT_NAMES = frozenset(
    (*_WEEKDAYS, *_MONTHS, "september", "october", "november", "december", *_SHORT_MONTHS)
)
# a company's legal form names no one: "Paramount Skydance Corp." and "Castor Studios Inc."
_LEGAL_FORMS = frozenset(("inc", "corp", "co", "ltd", "plc", "llc", "lp", "ag", "nv"))


class _Words:
    """Each story's headline words and, when first asked, the names it writes; each distinct
    word's content form worked out once."""

    def __init__(self, stories: Sequence[Story]) -> None:
        self.stories = stories
        self._forms: dict[str, str] = {}
        self.titles = _without_attributions([s.title for s in stories])
        self.headlines = [self.content(tokens(title)) for title in self.titles]
        self._names: dict[int, tuple[tuple[frozenset[str], str], ...]] = {}
        self._capitals: dict[int, frozenset[str]] = {}
        # once ``uncommon`` has counted: words of many headlines; names of very few
        self.common: frozenset[str] = frozenset()
        self.rare: frozenset[str] = frozenset()
        # the day's names: words some headline (not in title case) capitalises after its start
        self.capitalised = frozenset(
            form
            for title in self.titles
            if not title_case(title)
            for word in MID_CAPITAL.findall(title)
            for form in self.content(tokens(word))
        )

    def form(self, word: str) -> str:
        """``_form`` of ``word``, worked out once."""
        found = self._forms.get(word)
        if found is None:
            found = self._forms[word] = _form(word)
        return found

    def content(self, words: Sequence[str]) -> frozenset[str]:
        forms = self._forms
        try:
            found = {forms[word] for word in words}
        except KeyError:  # a word not seen before: its form worked out once
            found = {self.form(word) for word in words}
        found.discard("")
        return frozenset(found)

    def lead(self, i: int) -> str:
        """The first words of story ``i``'s teaser, without a dateline."""
        summary = self.stories[i].summary
        return " ".join(without_dateline(summary).split()[:_LEAD_WORDS]) if summary else ""

    def capitals(self, i: int) -> frozenset[str]:
        """The words story ``i``'s lead capitalises, lower-cased: a first look, cheaper than
        ``names``."""
        found = self._capitals.get(i)
        if found is None:
            found = self._capitals[i] = frozenset(map(str.lower, _CAPITAL.findall(self.lead(i))))
        return found

    def names(self, i: int) -> tuple[tuple[frozenset[str], str], ...]:
        """The names story ``i`` writes, each as the words of its run and its last word, the
        name's head ("President Donald Trump": trump; "Middle East": east)."""
        found = self._names.get(i)
        if found is None:
            title = self.titles[i]
            text = self.lead(i)
            if not title_case(title):
                text = f"{title}. {text}"
            runs = [
                [w for w in tokens(part) if w not in _NOT_NAMES]
                for m in _NAME.finditer(text)
                # a capital that starts a sentence names nothing, unless more capitals follow
                if m.group(1) is None or " " in m.group(2)
                for part in _POSSESSIVE.split(m.group(2))  # "Argentina's Milei": two names
            ]
            named = []
            for run in runs:
                forms = [form for form in map(self.form, run) if form]
                if forms:
                    named.append((frozenset(forms), forms[-1]))
            found = self._names[i] = tuple(named)
        return found

    def uncommon(self) -> set[str]:
        """Headline words at least two stories and at most a twentieth of them (ten in a small
        set, and ``MAX_POSTING`` at most) carry."""
        df = Counter(w for words in self.headlines for w in words)
        most = min(MAX_POSTING, max(10, len(self.headlines) // 20))
        self.common = frozenset(w for w, n in df.items() if n > most)
        self.rare = frozenset(w for w, n in df.items() if 2 <= n <= FEW) - _GENERIC
        return {w for w, n in df.items() if 2 <= n <= most}

    def linked(self, i: int, j: int, uncommon: set[str]) -> bool:
        """Two uncommon, not generic words in both headlines, one of them a whole name either
        story writes ("Canada", "Middle East"); or three not generic words, one uncommon and
        two of them names (the day's big names, "Trump" and "Iran", are common words, but two
        of them beside a rare one still make one storyline); or one rare word and two more
        names both leads write (``lead_linked``). Not when one name is all they share and each
        headline names someone the other story never writes (``apart``). The words of one name
        count once."""
        both = self.headlines[i] & self.headlines[j]
        rare = both & uncommon
        if not rare:
            return False
        rare -= _GENERIC
        if len(rare) >= 2:
            shared, need = rare, 2
        elif rare and len(content := both - _GENERIC) >= 3 and len(content & self.capitalised) > 1:
            shared, need = content, 3
        else:
            # one uncommon name ("Paramount"): two more names in both leads
            return bool(rare & self.rare) and self.lead_linked(i, j, both)
        names = {*self.names(i), *self.names(j)}
        # the names (their heads, or two of their words) among the shared words
        named = {
            frozenset(run & shared)
            for run, head in names
            if head in shared or len(run & shared) > 1
        }
        if len(named) < need - 1:
            return False  # two rare words and a name, or two names and a rare word
        if len(named) == 1 and self.apart(i, j):
            return False  # one name in common ("Trump's tariffs"), each on someone else
        # the shared words, the words of one name counting once ("Air Force")
        units = UnionFind(len(shared))
        place = {word: n for n, word in enumerate(sorted(shared))}
        for run, _ in names:
            first, *rest = sorted(run & shared) or [""]
            for word in rest:
                units.join(place[first], place[word])
        return len(units.groups()) >= need

    def apart(self, i: int, j: int) -> bool:
        """Whether each headline names an actor or a place the other story never writes
        ("Trump's tariffs" on Canada, and on Brazil: two storylines)."""
        return bool(self._own_names(i, j)) and bool(self._own_names(j, i))

    def _own_names(self, i: int, j: int) -> set[str]:
        headline = self.headlines[i]
        named = {word for run, _ in self.names(i) for word in run if word in headline}
        return named - self.content(tokens(f"{self.titles[j]} {self.lead(j)}"))

    def lead_linked(self, i: int, j: int, headline: frozenset[str]) -> bool:
        """Both leads name two more actors or places than the headlines share, each a name of
        its own in both stories, none of them a common word of the day's headlines ("Trump"),
        and one of the two headlines names one of them too (the talks' "Castor deal"): two
        reports of one war ("Kyiv", "Russia") name its places without being one event. A name
        and its adjective ("Ukraine", "Ukrainian") count once."""
        both = self.capitals(i) & self.capitals(j)
        if len({self.form(word) for word in both} - headline - {""}) < 2:
            return False  # the leads capitalise no two more words alike
        mine, theirs = self.names(i), self.names(j)
        words = {w for run, _ in mine for w in run} & {w for run, _ in theirs for w in run}
        words -= headline | self.common | _LEGAL_FORMS
        if len(words) < 2 or not words & (self.headlines[i] | self.headlines[j]):
            return False
        return _distinct(mine, words) >= 2 and _distinct(theirs, words) >= 2


def _distinct(names: Sequence[tuple[frozenset[str], str]], words: set[str]) -> int:
    """How many names hold ``words``, a name's words and one's adjective counting once."""
    found: list[set[str]] = []
    for run, _ in names:
        stems = {w[:_STEM] for w in run & words}
        if stems and not any(stems & seen for seen in found):
            found.append(stems)
    return len(found)


_STEM = 5  # "ukraine" and "ukrainian", "california" and "californian": one name


# a headline's last part after a dash or a bar: "... output amid Iran crisis - Reuters"
_ATTRIBUTION = re.compile(r"\s+[-\u2013\u2014|]\s+([^-\u2013\u2014|]{2,40})$")
ATTRIBUTED = 3  # headlines that end with the same part before it names who published them


def _without_attributions(titles: Sequence[str]) -> list[str]:
    """The headlines without the outlet a news search appends to each ("- Reuters", "| AP"):
    a part that ends ``ATTRIBUTED`` headlines or more names who published them, not what
    happened, and two reports of different events sharing it are no storyline (a Saudi output
    cut and a Japanese request for LNG, both "- Reuters", were one)."""
    found = [_ATTRIBUTION.search(t) for t in titles]
    counts = Counter(m.group(1).strip().lower() for m in found if m)
    return [
        t[: m.start()] if m and counts[m.group(1).strip().lower()] >= ATTRIBUTED else t
        for t, m in zip(titles, found, strict=True)
    ]


_MADE_NOUNS = ("izations", "isations", "ization", "isation")


def _form(word: str) -> str:
    """A word's content form: singular, the root of a noun made with "-ization" ("dollarization"
    is "dollar"), or "" for a stopword, a number or a short word."""
    if word in STOPWORDS or word.isdigit() or len(word) < 3:
        return ""
    for ending in _MADE_NOUNS:
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    plural = len(word) > 3 and word.endswith("s") and not word.endswith("ss")
    return word[:-1] if plural else word


def group(stories: Sequence[Story], *, window: timedelta = WINDOW) -> list[list[int]]:
    """The storylines among ``stories``: lists of positions, each in the order given."""
    words = _Words(stories)
    uncommon = words.uncommon()
    postings: defaultdict[str, list[int]] = defaultdict(list)
    sets = UnionFind(len(stories))
    for i, headline in enumerate(words.headlines):
        mine = headline & uncommon
        content = headline - _GENERIC
        named = content & words.capitalised  # two of the day's names make a third word count
        maybe_named = mine & words.rare
        if not mine or (len(mine) < 2 and len(named) < 2 and not maybe_named):
            continue  # neither two uncommon words to share, nor an uncommon name, nor two names
        shared: Counter[int] = Counter()
        for word in mine:
            posting = postings[word]
            shared.update(posting)
            posting.append(i)
        when = stories[i].published
        for j, count in shared.items():
            theirs = words.headlines[j]
            enough = (
                count >= 2
                or (len(named & theirs) >= 2 and len(content & theirs) >= 3)
                or bool(maybe_named & theirs)  # an uncommon name: the leads may name two more
            )
            close = abs(when - stories[j].published) <= window
            if enough and close and sets.find(i) != sets.find(j) and words.linked(i, j, uncommon):
                sets.join(i, j)  # (a pair already joined through others is not compared)
    return sets.groups()


def brute_force(stories: Sequence[Story], *, window: timedelta = WINDOW) -> list[list[int]]:
    """``group`` by comparing every pair: the reference the postings must agree with."""
    words = _Words(stories)
    uncommon = words.uncommon()
    sets = UnionFind(len(stories))
    for i, j in combinations(range(len(stories)), 2):
        close = abs(stories[i].published - stories[j].published) <= window
        if close and words.linked(i, j, uncommon):
            sets.join(i, j)
    return sets.groups()


def fold(
    stories: Sequence[Story], *, sent: Collection[str] = (), window: timedelta = WINDOW
) -> list[tuple[Story, list[int]]]:
    """One story per storyline, with the positions of its members: the storyline's most
    informative report, filed first under the storyline's best sector, carrying the others as
    its ``reports`` (most outlets first, then newest).

    Stories whose id is in ``sent`` (an earlier edition carried them) are grouped too but never
    shown: a storyline of sent stories only is left out, and one with new reports beside sent
    ones is a new development: it ``follows`` the newest of them.
    """
    out = []
    for members in group(stories, window=window):
        new = [i for i in members if stories[i].id not in sent]
        if not new:
            continue
        items = [stories[i] for i in new]
        lead = items[0] if len(items) == 1 else _folded(items)
        if len(new) < len(members):  # it follows the newest report sent before
            sent_before = max((stories[i] for i in members if i not in new), key=_newest)
            lead = dataclasses.replace(lead, follows=sent_before.id)
        out.append((lead, new))
    return out


def _newest(story: Story) -> tuple[datetime, str]:
    return story.published, story.id


def _informative(story: Story, sector: str) -> tuple[bool, bool, int, datetime, int]:
    """The report a storyline leads with: one filed under its section, with a real teaser,
    carried by the most outlets, then the latest development (then the fullest teaser)."""
    fits = sector in story.sectors
    return (fits, not thin_reason(story), story.outlets, story.published, len(story.summary))


def _folded(items: Sequence[Story]) -> Story:
    best = _best_sector(items)
    lead = max(items, key=lambda s: _informative(s, best))
    others = sorted(
        (s for s in items if s is not lead), key=lambda s: (-s.outlets, -s.published.timestamp())
    )
    confidence = max(f.confidence for s in items for f in s.fits if f.sector == best)
    fits = (SectorFit(best, confidence), *(f for f in lead.fits if f.sector != best))
    reports = tuple(others)
    return dataclasses.replace(lead, fits=fits, reports=reports)


def _best_sector(stories: Sequence[Story]) -> str:
    """The sector most of a storyline's reports are filed under, weighed by confidence (an
    editor's move, of infinite confidence, decides); ties go to the best-ranked report's."""
    votes: defaultdict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for n, story in enumerate(stories):
        for rank, fit in enumerate(story.fits):
            weight = 1000.0 if math.isinf(fit.confidence) else min(fit.confidence, 2.0)
            votes[fit.sector] += weight / (1 + rank)
            first.setdefault(fit.sector, n)
    return max(votes, key=lambda sector: (votes[sector], -first[sector]))
