"""The templates' filters: dates, times, wrapped plain text, the list of other outlets, a
storyline's reports by outlet."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from newsletter.models import Story


def outlets(names: Sequence[str], shown: int = 3) -> str:
    """ "A, B, C +2 more": the other outlets of a story, the first few by name."""
    listed = ", ".join(names[:shown])
    rest = len(names) - shown
    return f"{listed} +{rest} more" if rest > 0 else listed


def by_outlet(reports: Sequence[Story]) -> list[Story]:
    """A storyline's reports, the first of each outlet only (the email links each outlet once;
    every report is listed on the web page and in the text part)."""
    first: dict[str, Story] = {}
    for report in reports:
        first.setdefault(report.source, report)
    return list(first.values())


def longdate(value: date) -> str:
    """Wednesday, 25 November 2026."""
    return f"{value:%A}, {value.day} {value:%B %Y}"


def shortdate(value: date) -> str:
    """25 Nov 2026."""
    return f"{value.day} {value:%b %Y}"


def hhmm(value: datetime) -> str:
    """07:30 UTC."""
    return f"{value:%H:%M} UTC"


@functools.lru_cache(maxsize=8192)  # the same teasers in many variants: each wrapped once
def wrap(text: str, width: int = 78, indent: str = "", first: str | None = None) -> str:
    """Plain text wrapped for the text part (``first`` starts the first line instead of
    ``indent``, as "* " does a list item); never breaks a URL or a long word."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def storytime(value: datetime, zone: str, edition_date: date) -> str:
    """A story's time as the publication's readers read it: "07:30 GMT" in the schedule's
    time zone, with the day when it is not the edition's ("Tue 24 Nov, 18:05 GMT")."""
    local = value.astimezone(_zone(zone))
    when = f"{local:%H:%M} {local.tzname() or zone}"
    if local.date() != edition_date:
        when = f"{local:%a} {local.day} {local:%b}, {when}"
    return when


def when(value: datetime, zone: str, edition_date: date) -> str:
    """A story's day only where it helps a reader: "" on the edition's day, "yesterday" the day
    before, else the day ("Tue 24 Nov")."""
    local = value.astimezone(_zone(zone)).date()
    if local >= edition_date:
        return ""
    if (edition_date - local).days == 1:
        return "yesterday"
    return f"{local:%a} {local.day} {local:%b}"


@functools.lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
