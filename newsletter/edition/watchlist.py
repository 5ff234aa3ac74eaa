"""A reader's watchlist in the email: the day's stories that name what the reader follows
(companies, commodities, places), first in the email under "Your watchlist", whatever their
sector.

A term matches on whole words, case-insensitively, as itself or as any alias the publisher
lists for it (``watchlist.aliases``: following "TSMC" also finds "Taiwan Semiconductor", and
following an alias finds the name). Each term is matched once per edition against every story
of the edition, best-ranked first; each distinct watchlist once.

Rendering stays shared: a variant is rendered once, with markers where the block goes (the
reader fields ``watchlist`` and ``watchlist_text`` of ``personalize``); each distinct set of
found stories, with the reader's terms that found them, is rendered once as a small block
(``Blocks``) and filled in for its readers like their links, so readers of one variant share
one request whatever their watchlists. A watchlist that finds nothing leaves no block at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from newsletter.models import Edition, Story
from newsletter.models.readers import term_core

HTML_BLOCK = "watchlist.html.j2"
TEXT_BLOCK = "watchlist.txt.j2"
MAX_BYTES = 7_000  # a block's HTML and text together, well within SendGrid's 10,000 a reader


@dataclass(frozen=True, slots=True)
class Match:
    """A story found by a watchlist, with the reader's terms that found it."""

    story: Story
    terms: tuple[str, ...]


class Watchlists:
    """The stories of one edition that each watchlist finds."""

    def __init__(
        self, edition: Edition, aliases: Mapping[str, Sequence[str]], *, limit: int
    ) -> None:
        seen: dict[str, Story] = {}
        for section in edition.sections:
            for story in section.stories:
                seen.setdefault(story.id, story)
        self._stories = list(seen.values())
        self._texts = [f"{s.title}\n{s.summary}" for s in self._stories]
        self._aliases: dict[str, set[str]] = {}
        for name, others in aliases.items():
            group = {name, *others}
            for member in group:
                self._aliases.setdefault(member.casefold(), set()).update(group)
        self._limit = limit
        self._found: dict[str, frozenset[int]] = {}
        self._cache: dict[tuple[str, ...], tuple[Match, ...]] = {}

    def _pattern(self, term: str) -> re.Pattern[str]:
        names = sorted(self._aliases.get(term.casefold(), {term}) | {term}, key=len, reverse=True)
        words = "|".join(_words(n) for n in names if term_core(n)) or r"(?!)"  # (none: nothing)
        return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)

    def _stories_of(self, term: str) -> frozenset[int]:
        key = term.casefold()
        found = self._found.get(key)
        if found is None:
            pattern = self._pattern(term)
            found = frozenset(i for i, text in enumerate(self._texts) if pattern.search(text))
            self._found[key] = found
        return found

    def matches(self, terms: Sequence[str]) -> tuple[Match, ...]:
        """The stories these terms find, best first, at most the limit; () for none."""
        if not terms:
            return ()
        key = tuple(terms)  # as the reader wrote them: the block names the reader's own
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        by_story: dict[int, list[str]] = {}
        for term in terms:
            for index in self._stories_of(term):
                by_story.setdefault(index, []).append(term_core(term))  # as the block names it
        chosen = sorted(by_story)[: self._limit]  # the edition's order: best-ranked first
        found = tuple(Match(self._stories[i], tuple(by_story[i])) for i in chosen)
        self._cache[key] = found
        return found


_GAP = re.compile(r"[\s\-\u2010-\u2015]+")  # spaces and hyphens: "lithium ion", "lithium-ion"


def _words(name: str) -> str:
    """The pattern of a term's core, a space or a hyphen matching either."""
    return _GAP.pattern.join(re.escape(part) for part in _GAP.split(term_core(name)))


class Blocks:
    """Each distinct set of found stories as the "Your watchlist" block, HTML and text, made
    once and handed to every reader it belongs to as their ``watchlist`` values (filled at the
    variant's markers, or sent to SendGrid as substitutions: within its 10,000 bytes a reader,
    so stories are left out from the end past ``MAX_BYTES``)."""

    def __init__(self, render: Callable[[str, Mapping[str, Any]], str]) -> None:
        self._render = render
        self._made: dict[tuple[tuple[str, tuple[str, ...]], ...], dict[str, str]] = {}

    def values(self, found: tuple[Match, ...]) -> dict[str, str]:
        """The reader values of this block (empty blocks when nothing is found): one per set
        of stories and the terms that found them, which the block names (never another
        reader's terms)."""
        key = tuple((m.story.id, m.terms) for m in found)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = self._make(found)
        return made

    def _make(self, found: tuple[Match, ...]) -> dict[str, str]:
        while found:
            items = [{"story": m.story, "terms": m.terms} for m in found]
            html = self._render(HTML_BLOCK, {"items": items})
            text = self._render(TEXT_BLOCK, {"items": items})
            if len(html.encode()) + len(text.encode()) <= MAX_BYTES or len(found) == 1:
                return {"watchlist": html, "watchlist_text": text}
            found = found[:-1]
        return {"watchlist": "", "watchlist_text": ""}
