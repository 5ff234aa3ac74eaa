"""Did-you-mean: the nearest known name to a mistyped one (a key, a sector slug, a choice, a
time zone), phrased to follow a problem, e.g. ``unknown sector 'oil-gaz'; did you mean
'oil-gas'?``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the known name nearest to ``word``, or ``""`` when none is
    near."""
    near = nearest(word, choices)
    return f"; did you mean {near!r}?" if near is not None else ""


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The known name nearest to ``word`` (one that differs only in case first), if any is."""
    options = [c for c in choices if c != word]
    same_but_case = [c for c in options if c.lower() == word.lower()]
    near = same_but_case or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return near[0] if near else None
