"""Feed bytes → ``Story`` objects. Pure: bytes, response headers and the time in; stories out.

feedparser does the parsing with its own HTML sanitiser switched off: every title and summary is
turned into plain text by ``text.to_plain_text`` (nh3), which is both stricter and much faster.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from newsletter.errors import FeedError
from newsletter.ingest.language import detect, primary_subtag
from newsletter.models import FeedSource, Story
from newsletter.runtime import process_pool
from newsletter.text import canonical_url, plain_line, teaser, to_plain_text, web_url

TITLE_LENGTH = 200


def parse_feed(
    content: bytes, feed: FeedSource, *, headers: Mapping[str, str], now: datetime
) -> tuple[list[Story], list[str]]:
    """Parse feed bytes into stories (and warnings), or raise ``FeedError`` saying what came.

    Header keys are lower-cased for feedparser, which otherwise ignores the HTTP charset.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    parsed: Any = feedparser.parse(
        content,
        response_headers=lowered,
        sanitize_html=False,  # we keep plain text only, cleaned by nh3
        resolve_relative_uris=False,  # only content links are affected; we keep no markup
    )
    entries = parsed.get("entries") or []
    warnings: list[str] = []
    if not entries:
        if parsed.get("version") and not parsed.get("bozo"):
            return [], warnings
        raise FeedError(
            describe_non_feed(
                content, parsed, base=feed.location if "://" in feed.location else feed.url
            ),
            hint=f"Check that {feed.url} is the address of an RSS or Atom feed.",
            feed=feed.url,
        )
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        warnings.append(f"feed is not well-formed ({problem}); its readable entries were used")
    skipped = 0
    channel = parsed.get("feed") or {}
    declared = primary_subtag(
        dict.get(channel, "language") or lowered.get("content-language") or ""
    )
    found: list[tuple[Story, str]] = []
    for entry in entries:
        story = _entry_to_story(entry, feed, now, declared)
        if story is None:
            skipped += 1
        else:  # what tells apart two entries of one id: the link (a GUID), or link and headline
            link = canonical_url(story.url)
            found.append((story, link if dict.get(entry, "id") else f"{link}\n{story.title}"))
    if parsed.get("bozo") and not found:  # cut off, say, before any entry was whole
        raise FeedError(
            f"feed is not well-formed ({parsed.get('bozo_exception')}) and no entry of it "
            "could be read",
            hint=f"Open {feed.url} to see what it sends; a download cut short is tried again "
            "at the next collect.",
            feed=feed.url,
        )
    if skipped:
        noun = "entry" if skipped == 1 else "entries"
        warnings.append(f"{skipped} {noun} without an http(s) link skipped")
    return _told_apart(found, feed, warnings), warnings


def _told_apart(
    found: list[tuple[Story, str]], feed: FeedSource, warnings: list[str]
) -> list[Story]:
    """The stories, once each: entries of one id (a GUID or a link) whose links or headlines
    differ are each their own story, with an id of their own (a CMS that puts the site's address
    in every GUID); of the same one twice (an updated headline) the first is kept."""
    keys: dict[str, set[str]] = {}
    for story, key in found:
        keys.setdefault(story.id, set()).add(key)
    shared = {story_id for story_id, seen in keys.items() if len(seen) > 1}
    stories: dict[str, Story] = {}
    for story, key in found:
        if story.id in shared:
            own = hashlib.sha256(f"{feed.url}\nshared\n{story.id}\n{key}".encode()).hexdigest()
            story = replace(story, id=own[:16])
        stories.setdefault(story.id, story)
    apart = sum(len(keys[story_id]) for story_id in shared)
    if apart:
        warnings.append(f"{apart} entries share a GUID or link with another: each is kept apart")
    return list(stories.values())


# a page's own link to its feed: <link rel="alternate" type="application/rss+xml" href="...">
_ALTERNATE = re.compile(rb"<link\b[^>]*\btype=[\"']application/(?:rss|atom)\+xml[^>]*>", re.I)
_HREF = re.compile(rb"\bhref=[\"']([^\"'<>]+)[\"']", re.I)


def describe_non_feed(content: bytes, parsed: Any, *, base: str = "") -> str:
    """Say what was received instead of a feed (and, for a page that names its feed, which
    address that is, resolved against ``base``)."""
    head = content[:2048].lstrip().lower()
    if not head:
        return "empty response, not a feed"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]:
        said = "received an HTML page, not a feed"
        found = _ALTERNATE.search(content[:65536])
        href = _HREF.search(found.group(0)) if found else None
        named = web_url(urljoin(base, href.group(1).decode("utf-8", "replace"))) if href else None
        return f"{said}; the page names its feed: {named} (use it as the url)" if named else said
    if b"<urlset" in head or b"<sitemapindex" in head:
        return "received a sitemap, not a feed"
    if head.startswith((b"{", b"[")):
        return "received JSON, not an RSS or Atom feed"
    problem = parsed.get("bozo_exception")
    return f"not a readable feed ({problem})" if problem else "not a readable feed"


def _entry_to_story(entry: Any, feed: FeedSource, now: datetime, declared: str) -> Story | None:
    # feedparser's dict maps many alias keys on every lookup; the canonical keys are plain items.
    get = dict.get
    link = _story_link(entry, get)
    if link is None:
        return None
    title = teaser(to_plain_text(get(entry, "title") or ""), TITLE_LENGTH)
    raw_summary = get(entry, "summary") or ""
    if not raw_summary:
        content = get(entry, "content")
        if content:
            raw_summary = dict.get(content[0], "value") or ""
    summary = teaser(to_plain_text(raw_summary))
    if not title:  # a headline is needed: the teaser's start, else the link itself
        title = teaser(summary, 100) if summary else link
    guid = get(entry, "id") or ""
    return Story(
        id=story_id(feed.url, guid=guid, link=link, title=title, summary=summary),
        title=title,
        url=link,
        summary=summary,
        source=plain_line(feed.name),
        published=_dated(_entry_time(entry, now, get), link),
        feed_url=feed.url,
        language=declared,  # the feed's declared language; judged from the text when stored
    )


def _story_link(entry: Any, get: Any) -> str | None:
    """The entry's link, else an alternate link, else a GUID that is a URL; http(s) only."""
    link = get(entry, "link")
    if link:
        found = web_url(link)
        if found:
            return found
    for item in get(entry, "links") or ():
        href = get(item, "href")
        if href and get(item, "rel", "alternate") == "alternate":
            found = web_url(href)
            if found:
                return found
    guid = get(entry, "id")
    return web_url(guid) if guid else None


def _entry_time(entry: Any, now: datetime, get: Any) -> datetime:
    """Published, else updated, in UTC; missing means first seen (now); future is clamped."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = get(entry, key)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
            return min(when, now)
    return now


# a date in a link's path: /2011/05/12/, /story-2011-05-12-..., /20110512/, or /2011/05/
_URL_DATE = re.compile(
    r"[/_-]((?:19|20)\d\d)(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?|(\d\d)(\d\d))(?=[/_.-]|$)"
)
_LINK_SLACK = timedelta(days=2)  # a link's date this much before the feed's is a re-run


def _dated(published: datetime, link: str) -> datetime:
    """The feed's time, unless the link's own path dates the story well before it (an old
    article re-listed, or an undated item first seen today): then the end of that day (or
    month) the link names."""
    path = urlsplit(link).path
    for match in _URL_DATE.finditer(path):
        year, month, day, month2, day2 = match.groups()
        try:
            start = datetime(
                int(year), int(month or month2 or 1), int(day or day2 or 1), tzinfo=UTC
            )
        except ValueError:
            continue
        whole_month = not match.group(3) and not match.group(5)
        end = start + (timedelta(days=31) if whole_month else timedelta(days=1))
        if end + _LINK_SLACK < published:
            return end
    return published


def story_id(feed_url: str, *, guid: str, link: str, title: str, summary: str) -> str:
    """Stable id within a feed: from the GUID, else the canonical link, else the text."""
    if guid.strip():
        key = "guid\n" + guid.strip()
    elif link:
        key = "link\n" + canonical_url(link)
    else:
        key = "text\n" + title + "\n" + summary
    return hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()[:16]


def parse_job(
    content: bytes, feed: FeedSource, headers: Mapping[str, str], now: datetime
) -> tuple[list[Story], list[str], str | None, list[str]]:
    """``parse_feed`` for a worker process (this module and the language detector are all it
    imports): errors come back as text, not as exceptions. Each story's language is judged
    here too (``language.detect``, the feed's declared language as a hint), on the worker's
    core while the collection waits on the network, so the collection need not judge them
    all at its end."""
    try:
        stories, warnings = parse_feed(content, feed, headers=headers, now=now)
    except FeedError as exc:
        return [], [], exc.message, []
    languages = [detect(s.title, s.summary, s.language) for s in stories]
    return stories, warnings, None, languages


def parse_pool(workers: int) -> ProcessPoolExecutor | None:
    """Processes that parse with ``parse_job`` (this module is all they import)."""
    if workers <= 1:
        return None
    return process_pool(workers, preload="newsletter.ingest.parse")
