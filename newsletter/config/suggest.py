"""Did-you-mean: the nearest known name to a mistyped one (a key, a sector slug, a choice, a
time zone), phrased to follow a problem, e.g. ``unknown sector 'oil-gaz'; did you mean
'oil-gas'?``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


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


@cache
def time_zones() -> frozenset[str]:
    """Every IANA time zone name this system knows (empty when it has no time zone data)."""
    return frozenset(available_timezones())


def time_zone_problem(name: str) -> str | None:
    """Why ``name`` is no time zone, with the nearest one; None when it is one."""
    zones = time_zones()
    if name in zones:
        return None
    if not zones:  # no list to look in: the name is good if it loads
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return f"unknown time zone {name!r}"
        return None
    problem = f"unknown time zone {name!r}"
    cased = [z for z in zones if z.lower() == name.lower()]
    if cased:
        return f"{problem}; did you mean {cased[0]!r}? (time zone names are case-sensitive)"
    underscored = name.strip().replace(" ", "_")
    if underscored in zones:
        return f"{problem}; did you mean {underscored!r}?"
    return problem + did_you_mean(underscored, sorted(zones))
