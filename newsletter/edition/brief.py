"""The brief that opens the email: the day's biggest storylines across a reader's sectors, each a
headline and a sentence or two saying what happened, drawn from every outlet that carried it.
Pure.

``pick`` takes the brief's storylines out of one reader's sections (most outlets first, then
rank within the section, then the newest), so the sections below never repeat them.
``summary_of`` is the extractive summary: the most informative sentences of the outlets' teasers
(figures, names, the words the outlets share), one or two, never a cut sentence when a whole
one says as much. ``candidates`` lists every story that can open some reader's brief, for the
optional writer.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from newsletter.edition.digest import layout
from newsletter.edition.thin import thin_reason
from newsletter.models import Edition, Section, Story
from newsletter.text import tokens

MAX_CHARS = 300  # a brief summary at most, about two lines on a phone
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]?\s+(?=[\"'\u201c\u2018(]?[A-Z0-9])")
_FIGURE = re.compile(
    r"[$\u00a3\u20ac\u00a5]\s?\d|\d[\d,.]*\s?(%|percent|per cent|bn|billion|million|mln|"
    r"trillion|tonnes?|barrels?|bpd|gw|mw|twh|km)\b|\b\d[\d,.]*\b",
    re.I,
)
_CUT = ("\u2026", "...", "[\u2026]", "[...]")
_DATELINE = re.compile(r"^[A-Z][A-Z .,'-]{2,40}(\([^)]{1,40}\))?\s*[:\u2014\u2013-]\s+")
_CLOSERS = re.compile(
    r"\b(read more|click here|continue reading|subscribe|sign up|the post .* appeared first)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class BriefItem:
    """One storyline of the brief, as the templates show it."""

    story: Story
    sector: str  # the name of the section it came from
    summary: str  # written (checked) or extractive
    why: str = ""  # the editor's "why it matters"
    written: bool = False


def pick(
    edition: Edition, sections: Sequence[Section]
) -> tuple[tuple[BriefItem, ...], list[Section]]:
    """The brief's storylines out of one reader's ``sections``, and the sections without them
    (sections left with nothing are dropped)."""
    size = edition.brief_size
    if size <= 0:
        return (), list(sections)
    ranked = sorted(
        (
            (-story.outlets, position, -story.published.timestamp(), order, story.id)
            for order, section in enumerate(sections)
            for position, story in enumerate(section.stories)
            if not thin_reason(story)
        ),
    )
    chosen = {key[-1] for key in ranked[:size]}
    written = dict(edition.written)
    notes = dict(edition.notes)
    items: list[BriefItem] = []
    for key in ranked[:size]:
        section = sections[key[3]]
        story = section.stories[key[1]]
        text = written.get(story.id, "")
        items.append(
            BriefItem(
                story,
                section.sector.name,
                text or summary_of(story),
                notes.get(story.id, ""),
                bool(text),
            )
        )
    rest = [
        dataclasses.replace(s, stories=tuple(x for x in s.stories if x.id not in chosen))
        for s in sections
    ]
    return tuple(items), [s for s in rest if s.stories or s.more]


def candidates(edition: Edition) -> list[Story]:
    """Every story that can open some reader's brief: the first ``brief_size`` of each sector
    on its own, biggest storylines first (the writer writes them in this order)."""
    found: dict[str, Story] = {}
    for section in edition.sections:
        for shown in layout(edition, (section.sector.slug,)):
            for story in shown.stories[: edition.brief_size]:
                found.setdefault(story.id, story)
    return sorted(found.values(), key=lambda s: (-s.outlets, -s.published.timestamp(), s.id))


def sentences(text: str) -> list[str]:
    """``text`` split into sentences, a dateline ("LONDON, Aug 21 :") taken off the first."""
    text = _DATELINE.sub("", " ".join(text.split()))
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def summary_of(story: Story) -> str:
    """One or two of the most informative sentences of the storyline's teasers, in their order
    of appearance; "" when no outlet gave a sentence worth showing."""
    texts = [story.summary, *(r.summary for r in story.reports)]
    shared = _shared_words([story, *story.reports])
    headline = set(tokens(story.title))
    scored: list[tuple[float, int, str]] = []
    seen: list[set[str]] = []
    for n, sentence in enumerate(s for text in texts for s in sentences(text)):
        words = set(tokens(sentence))
        if len(words) < 5 or _CLOSERS.search(sentence):
            continue
        if any(len(words & other) / len(words | other) > 0.6 for other in seen):
            continue  # another outlet's wording of a sentence already weighed
        seen.append(words)
        scored.append((_score(sentence, words, shared, headline), n, sentence))
    if not scored:
        return ""
    scored.sort(key=lambda item: (-item[0], item[1]))
    best = [scored[0]]
    for candidate in scored[1:]:
        if len(best[0][2]) + 1 + len(candidate[2]) <= MAX_CHARS and candidate[0] > 0:
            best.append(candidate)
            break
    text = " ".join(sentence for _, _, sentence in sorted(best, key=lambda item: item[1]))
    return _fitted(text)


def _score(sentence: str, words: set[str], shared: set[str], headline: set[str]) -> float:
    figures = len(_FIGURE.findall(sentence))
    names = sum(1 for word in sentence.split()[1:] if word[:1].isupper())
    score = (
        2.0 * min(figures, 3)
        + 0.5 * min(names, 4)
        + len(words & shared)
        - 0.3 * len(words & headline)
    )
    if sentence.rstrip().endswith(_CUT):
        score -= 4  # a feed's cut teaser: the whole sentence is better when there is one
    if len(sentence) > MAX_CHARS:
        score -= 2
    return score


def _shared_words(stories: Sequence[Story]) -> set[str]:
    """Words two or more outlets used (headline or teaser): what the storyline is about."""
    if len(stories) < 2:
        return set(tokens(stories[0].title)) if stories else set()
    counts: Counter[str] = Counter()
    for story in stories:
        counts.update(set(tokens(f"{story.title} {story.summary}")))
    return {word for word, n in counts.items() if n >= 2 and len(word) > 3}


def _fitted(text: str) -> str:
    """``text`` within ``MAX_CHARS``, cut at a word with an ellipsis when it must be."""
    if len(text) <= MAX_CHARS:
        return text
    cut = text[: MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}\u2026"
