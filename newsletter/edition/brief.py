"""The brief that opens the email: the day's biggest storylines across a reader's sectors, each a
headline and a sentence or two saying what happened, drawn from every outlet that carried it.
Pure.

``pick`` takes the brief's storylines out of one reader's sections (most outlets first, then
most reports, then rank within the section), so the sections below never repeat them.
``summary_of`` is the extractive summary: the most informative sentences of the outlets' real
teasers (figures, names, the words the outlets share), one or two, never a cut sentence when a
whole one says as much. ``candidates`` lists every story that can open some reader's brief, for the
optional writer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from newsletter.edition.digest import confident_in, layout
from newsletter.edition.thin import thin_reason, usable_teaser
from newsletter.models import Edition, Section, Story
from newsletter.text import teaser, tokens, without_dateline

MAX_CHARS = 300  # a brief summary at most, about two lines on a phone
SUBJECT_CHARS = 60  # of a subject line a phone shows whole
PER_SECTION = 2  # storylines of one section in the brief at most: the brief spans the sectors
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]?\s+(?=[\"'\u201c\u2018(]?[A-Z0-9])")
_FIGURE = re.compile(
    r"[$\u00a3\u20ac\u00a5]\s?\d|\d[\d,.]*\s?(%|percent|per cent|bn|billion|million|mln|"
    r"trillion|tonnes?|barrels?|bpd|gw|mw|twh|km)\b|\b\d[\d,.]*\b",
    re.I,
)
_CUT = ("\u2026", "...", "[\u2026]", "[...]")
# "LONDON, Nov 24 (Wire) - ", "ZURICH, Aug 21 : ", "BEIJING: ": where and when, not what
_CLOSERS = re.compile(
    r"\b(read more|click here|continue reading|subscribe|sign up|the post .* appeared first)\b",
    re.I,
)


# " - Reuters", " | Financial Times": an outlet's name after the headline
_OUTLET_SUFFIX = re.compile(r"\s+[-\u2013\u2014|]\s+((?:[A-Z0-9][\w.&'\u2019]*\s?){1,5})$")
# ", sources say", ", minister says", ", report says": who said it, after what was said
_ATTRIBUTION = re.compile(
    r",\s+(?:sources? (?:say|said)|(?:[\w.'\u2019-]+\s){0,4}(?:says|said)|according to .{2,40})$",
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
    (sections left with nothing are dropped): the editor's pins first, then most outlets, most
    reports, rank in the section and the newest, at most ``PER_SECTION`` from one section.
    Thin items never open the email."""
    size = max(1, edition.brief_size)  # an edition from before the brief: its top story
    pinned = {story: rank for rank, story in enumerate(edition.pinned)}
    ranked = sorted(
        (
            (
                pinned.get(story.id, len(pinned)),  # the editor's pins open it, in their order
                -story.outlets,
                -len(story.reports),  # then the storyline with the most reports
                position,
                -story.published.timestamp(),
                order,
                story.id,
            )
            for order, section in enumerate(sections)
            for position, story in enumerate(section.stories)
            if not thin_reason(story)
        ),
    )
    taken: list[tuple[int, int, int, int, float, int, str]] = []
    per_section: Counter[int] = Counter()
    for key in ranked:
        if len(taken) < size and per_section[key[5]] < PER_SECTION:
            taken.append(key)
            per_section[key[5]] += 1
    chosen = {key[-1] for key in taken}
    written = dict(edition.written)
    notes = dict(edition.notes)
    items: list[BriefItem] = []
    for key in taken:
        section = sections[key[5]]
        story = section.stories[key[3]]
        text = written.get(story.id, "")
        items.append(
            BriefItem(
                story,
                section.sector.name,
                text or summary_of(story) or teaser(story.summary),
                notes.get(story.id, ""),
                bool(text),
            )
        )
    rest = [_refilled(s, chosen, set(edition.pinned)) for s in sections]
    return tuple(items), [s for s in rest if s.stories or s.more]


def _refilled(section: Section, chosen: set[str], pinned: set[str]) -> Section:
    """``section`` without the brief's stories, each place they left taken by the next of its
    "more" headlines that could have led it (a pin, or confident and not thin)."""
    stories = [s for s in section.stories if s.id not in chosen]
    more = list(section.more)
    room = len(section.stories) - len(stories)
    slug = section.sector.slug
    for candidate in list(more):
        if room <= 0:
            break
        if candidate.id in pinned or (confident_in(candidate, slug) and not thin_reason(candidate)):
            more.remove(candidate)
            stories.append(candidate)
            room -= 1
    return replace(section, stories=tuple(stories), more=tuple(more))


def short_headline(title: str) -> str:
    """The headline without the outlet's name after it or a closing attribution."""
    text = " ".join(title.split())
    for pattern in (_OUTLET_SUFFIX, _ATTRIBUTION):
        shorter = pattern.sub("", text)
        if len(shorter) >= 20:
            text = shorter
    return text


def subject_lines(items: Sequence[BriefItem], limit: int = SUBJECT_CHARS) -> tuple[str, list[str]]:
    """The subject's headline (the biggest storyline whose headline a phone shows whole) and
    the next two storylines' headlines, for the preheader."""
    heads = [short_headline(item.story.title) for item in items]
    if not heads:
        return "", []
    first = next((h for h in heads if len(h) <= limit), "")
    if not first:  # every headline is long: the first, cut at a word
        first = heads[0][: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"
        heads[0] = first
    return first, [h for h in heads if h != first][:2]


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
    """``text`` split into sentences, a dateline ("LONDON, Aug 21 :") taken off the first; an
    abbreviation ("Warner Bros. Discovery", "Gov. Newsom") ends none."""
    text = without_dateline(" ".join(text.split()))
    found: list[str] = []
    for part in _SENTENCE_END.split(text):
        part = part.strip()
        if found and _ABBREVIATION.search(found[-1]):
            found[-1] = f"{found[-1]} {part}".strip()
        elif part:
            found.append(part)
    return found


# a word with a full stop that ends no sentence: a company's form, a title, a month
_ABBREVIATION = re.compile(
    r"\b(Bros|Inc|Corp|Co|Ltd|Plc|Cos|Mr|Mrs|Ms|Dr|Gov|Sen|Rep|Gen|Lt|Col|Capt|St|Jr|Sr|No"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec|U\.S|U\.K|[A-Z])\.$"
)


def summary_of(story: Story) -> str:
    """The most informative sentence of the storyline's teasers, and a second one when it adds
    nearly as much; "" when no outlet gave a sentence worth showing."""
    texts = [s.summary for s in (story, *story.reports) if usable_teaser(s)]
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
    best = scored[0]
    text = best[2]
    for score, _, sentence in scored[1:]:  # a second sentence only when it adds as much
        if score >= max(2.0, best[0] / 2) and len(text) + 1 + len(sentence) <= MAX_CHARS:
            text = f"{text} {sentence}"
            break
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


def capped_more(sections: Sequence[Section], limit: int) -> list[Section]:
    """The sections with at most ``limit`` "more" headlines in all, shared out in turn."""
    if sum(len(s.more) for s in sections) <= limit:
        return list(sections)
    keep = [0] * len(sections)
    left = limit
    while left:
        grew = False
        for i, section in enumerate(sections):
            if left and keep[i] < len(section.more):
                keep[i] += 1
                left -= 1
                grew = True
        if not grew:
            break
    return [replace(s, more=s.more[:n]) for s, n in zip(sections, keep, strict=True)]


def split_top_story(sections: Sequence[Section]) -> tuple[Story | None, list[Section]]:
    """The lead story (most outlets among the sections' first stories), and the rest."""
    leads = [(i, s.stories[0]) for i, s in enumerate(sections) if s.stories]
    if not leads:
        return None, list(sections)
    index, top = max(leads, key=lambda pair: (pair[1].outlets, -pair[0]))
    rest = [replace(s, stories=s.stories[1:]) if i == index else s for i, s in enumerate(sections)]
    return top, [s for s in rest if s.stories or s.more]
