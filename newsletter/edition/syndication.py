"""The publication's own Atom feeds, made with feedgen (the one module that imports it): the
editions (``/feed.xml``) and one per sector (``/sectors/<slug>/feed.xml``). Pure: the caller
gives the editions and the stories, and the publication's addresses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from urllib.parse import quote

from feedgen.feed import FeedGenerator

from newsletter.models import Edition, Sector, Story

_IRI_SAFE = ":/?#[]@!$&'()*+,;=%~"  # what a link may hold as it is: its delimiters, escapes


@dataclass(frozen=True, slots=True)
class Site:
    """What a feed says about the publication."""

    name: str
    base_url: str  # the web app's public address, no trailing slash
    language: str
    logo_url: str = ""


def _feed(site: Site, path: str, title: str, subtitle: str, updated: datetime) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(f"{site.base_url}{path}")
    feed.title(title)
    feed.subtitle(subtitle)
    feed.link(href=f"{site.base_url}{path}", rel="self", type="application/atom+xml")
    feed.link(
        href=f"{site.base_url}{path.removesuffix('/feed.xml') or '/archive'}", rel="alternate"
    )
    feed.language(site.language)
    feed.updated(updated)
    feed.author({"name": site.name})
    if site.logo_url:
        feed.logo(site.logo_url)
    return feed


def edition_time(edition: Edition) -> datetime:
    return datetime.combine(edition.edition_date, time(0, 0), UTC)


def editions_feed(site: Site, editions: Sequence[tuple[Edition, str, int, list[str]]]) -> bytes:
    """The editions, newest first, each as (edition, its top headline, its story count, the
    sectors it shows)."""
    newest = edition_time(editions[0][0]) if editions else datetime(2000, 1, 1, tzinfo=UTC)
    feed = _feed(
        site, "/feed.xml", site.name, f"Every edition of {site.name}, as it was sent", newest
    )
    for edition, headline, count, names in reversed(editions):  # feedgen puts the last first
        day = edition.edition_date.isoformat()
        entry = feed.add_entry()
        url = f"{site.base_url}/archive/{day}"
        entry.id(url)
        day_name = f"{site.name}, {edition.edition_date:%d %b %Y}"
        entry.title(f"{day_name}: {headline}" if headline else day_name)
        entry.link(href=url, rel="alternate")
        entry.published(edition_time(edition))
        entry.updated(edition_time(edition))
        stories = f"{count} {'story' if count == 1 else 'stories'}"
        where = f" in {names[0]}" if len(names) == 1 else f" across {', '.join(names)}"
        entry.summary(f"{stories}{where if names else ''}.")
    return bytes(feed.atom_str(pretty=False))


def sector_feed(site: Site, sector: Sector, stories: Sequence[Story]) -> bytes:
    """A sector's latest stories, newest first, each linking to its source."""
    newest = stories[0].published if stories else datetime(2000, 1, 1, tzinfo=UTC)
    path = f"/sectors/{sector.slug}/feed.xml"
    feed = _feed(
        site, path, f"{site.name}: {sector.name}", f"The latest {sector.name} stories", newest
    )
    for story in reversed(stories):
        entry = feed.add_entry()
        entry.id(quote(story.url, safe=_IRI_SAFE))  # an IRI: a quote or a space escaped
        entry.title(story.title)
        entry.link(href=story.url, rel="alternate")
        entry.published(story.published)
        entry.updated(story.published)
        entry.author({"name": story.source})
        entry.category(term=sector.slug, label=sector.name)
        if story.summary:
            entry.summary(story.summary)
    return bytes(feed.atom_str(pretty=False))
