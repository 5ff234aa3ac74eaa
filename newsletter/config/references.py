"""What the models alone cannot check in a config file: a sector slug defined twice or named
where no sector has it (a feed's ``sector``, the sponsor's ``after``, an overrides file's
``move`` and ``sponsor.after``), a feed listed twice or at an address that is none.

These read the data as the YAML gave it, before or without the models' validation, so that a
file's every problem is reported at once; a value of the wrong type is left to the models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from newsletter.config.problems import Loc, Problem
from newsletter.config.suggest import did_you_mean


def config_references(data: dict[str, Any]) -> list[Problem]:
    """Every sector, feed and sponsor reference of a config file that is wrong."""
    sectors = data.get("sectors")
    slugs: list[str] = []
    problems: list[Problem] = []
    for i, sector in enumerate(sectors if isinstance(sectors, list) else []):
        slug = sector.get("slug") if isinstance(sector, dict) else None
        if not isinstance(slug, str):
            continue
        if slug in slugs:
            problems.append(
                Problem(
                    ("sectors", i, "slug"),
                    f"sector {slug!r} is defined twice",
                    "Each sector needs its own slug.",
                )
            )
        slugs.append(slug)
    if not slugs:  # no sectors (yet): the models say so
        return problems
    problems += _feeds(data.get("feeds"), slugs)
    sponsor = data.get("sponsor")
    if isinstance(sponsor, dict):
        problems += sector_reference(("sponsor", "after"), sponsor.get("after"), slugs)
    return problems


def overrides_references(data: dict[str, Any], slugs: Sequence[str]) -> list[Problem]:
    """The sectors an overrides file names (``move``, ``sponsor.after``) that do not exist."""
    problems = []
    moves = data.get("move")
    for key, slug in moves.items() if isinstance(moves, dict) else ():
        problems += sector_reference(("move", str(key)), slug, slugs)
    sponsor = data.get("sponsor")
    if isinstance(sponsor, dict):
        problems += sector_reference(("sponsor", "after"), sponsor.get("after"), slugs)
    return problems


def sector_reference(
    loc: Loc, slug: object, slugs: Sequence[str], *, of: str = ""
) -> list[Problem]:
    """A problem when ``slug`` (a text) is no configured sector, with the nearest one."""
    if not isinstance(slug, str) or slug in slugs:
        return []
    return [
        Problem(
            loc,
            f"unknown sector {slug!r}{of}{did_you_mean(slug, slugs)}",
            f"Use one of the configured sector slugs: {', '.join(slugs)}.",
        )
    ]


def _feeds(feeds: object, slugs: Sequence[str]) -> list[Problem]:
    problems: list[Problem] = []
    urls: set[str] = set()
    names: set[str] = set()  # the status lines, drop_feeds and the logs name a feed by it
    for i, feed in enumerate(feeds if isinstance(feeds, list) else []):
        if not isinstance(feed, dict):
            continue
        name = feed.get("name")
        of = f" (feed {name!r})" if isinstance(name, str) else ""
        if isinstance(name, str):
            if name in names:
                said = f"feed name {name!r} is used twice"
                problems.append(Problem(("feeds", i, "name"), said, "Give each feed its own name."))
            names.add(name)
        problems += sector_reference(("feeds", i, "sector"), feed.get("sector"), slugs, of=of)
        url = feed.get("url")
        if not isinstance(url, str):
            continue
        same = url.strip().split("#")[0]  # a fragment is no other feed
        if same in urls:
            problems.append(
                Problem(
                    ("feeds", i, "url"), f"feed {url!r} is listed twice", "Remove the second entry."
                )
            )
        urls.add(same)
        problems += _feed_url(("feeds", i, "url"), url)
    return problems


# an address without its scheme: an IP address, a host with a port, or "www." before a path
_NO_SCHEME = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?|[\w.-]+:\d+|www\.[\w.-]+)(?:/|$)")


def _feed_url(loc: Loc, url: str) -> list[Problem]:
    if url != url.strip():
        return [Problem(loc, f"{url!r} has spaces around it", "Remove them: an address has none.")]
    if _NO_SCHEME.match(url):
        scheme = "https" if url.startswith("www.") else "http"
        hint = "A web address starts with http:// or https://; else it is read as a file's path."
        return [Problem(loc, f"{url!r} has no scheme: did you mean '{scheme}://{url}'?", hint)]
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if len(scheme) > 1 and scheme not in {"http", "https", "file"}:
        hint = "A feed is an http(s) URL or a path to a local file."
        return [Problem(loc, f"unsupported scheme {scheme!r}", hint)]
    if scheme in {"http", "https"} and not parts.hostname:
        hint = "Give the whole address, e.g. https://example.com/feed.xml."
        return [Problem(loc, f"{url!r} has no host", hint)]
    return []
