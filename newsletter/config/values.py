"""Checks of single values that the settings' models use, phrased for a person: a time zone
(with the nearest one when it is none) and an image's address (https only)."""

from __future__ import annotations

from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator

from newsletter.config.suggest import did_you_mean


def https_image(value: str) -> str:
    """An image's address: https only, as the web pages' content security policy allows."""
    if value.startswith("https://"):
        return value
    if value.startswith("http://"):
        raise ValueError(
            f"an image must be served over https, got {value!r}: the web pages' content "
            f"security policy blocks http images; use {'https://' + value[7:]!r}"
        )
    raise ValueError(f"expected the https:// address of an image, got {value!r}")


ImageUrl = Annotated[str, AfterValidator(https_image)]


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
