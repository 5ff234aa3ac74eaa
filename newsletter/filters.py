"""The templates' filters: dates, times, wrapped plain text, the list of other outlets."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import date, datetime


def outlets(names: Sequence[str], shown: int = 3) -> str:
    """ "A, B, C +2 more": the other outlets of a story, the first few by name."""
    listed = ", ".join(names[:shown])
    rest = len(names) - shown
    return f"{listed} +{rest} more" if rest > 0 else listed


def longdate(value: date) -> str:
    """Wednesday, 25 November 2026."""
    return f"{value:%A}, {value.day} {value:%B %Y}"


def shortdate(value: date) -> str:
    """25 Nov 2026."""
    return f"{value.day} {value:%b %Y}"


def hhmm(value: datetime) -> str:
    """07:30 UTC."""
    return f"{value:%H:%M} UTC"


def wrap(text: str, width: int = 72, indent: str = "") -> str:
    """Plain text wrapped for the text part; never breaks a URL or a long word."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
