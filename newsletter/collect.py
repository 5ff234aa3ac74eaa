"""Fetch feeds concurrently, then parse the bytes into ``Story`` objects.

``fetch_feed``/``fetch_all`` do the I/O (httpx, or a local file); ``parse_feed`` is pure: bytes and
response headers in, cleaned stories out. One broken feed never stops the others: its error comes
back in its ``FetchResult`` or as a ``FeedError`` from ``parse_feed``.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
import httpx
import nh3

from newsletter import __version__
from newsletter.errors import FeedError
from newsletter.models import FeedSource, Story

logger = logging.getLogger(__name__)

TEASER_LENGTH = 300
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

# Query parameters that only track the click; dropped from canonical links.
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_hsenc"}
)
_TRACKING_PREFIXES = ("utm_", "_hs", "pk_", "mtm_")
_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|section)\b[^>]*>", re.I
)
_TAG = re.compile(r"<[a-zA-Z!/?]")
_TAG_LIKE = re.compile(r"<[a-zA-Z!/?][^>]*>?")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The raw answer for one feed: bytes and lower-cased headers, or what went wrong."""

    feed: FeedSource
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None
    error: str | None = None


def user_agent(contact_url: str) -> str:
    return f"newsletter/{__version__} (+{contact_url})"


async def fetch_feed(
    client: httpx.AsyncClient,
    feed: FeedSource,
    *,
    timeout: float,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FetchResult:
    """Fetch one feed within ``timeout`` seconds in all and ``max_bytes`` after decompression."""
    if not feed.location.startswith(("http://", "https://")):
        return _read_file(feed, max_bytes)
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", feed.location) as response:
                if response.status_code >= 400:
                    reason = response.reason_phrase or "error"
                    return FetchResult(
                        feed,
                        status=response.status_code,
                        error=f"HTTP {response.status_code} {reason}",
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        return FetchResult(
                            feed,
                            status=response.status_code,
                            error=f"response larger than {max_bytes:,} bytes; gave up",
                        )
                    chunks.append(chunk)
                headers = {k.lower(): v for k, v in response.headers.items()}
                return FetchResult(feed, b"".join(chunks), headers, response.status_code)
    except TimeoutError:
        return FetchResult(feed, error=f"timed out after {timeout:g} s")
    except httpx.TimeoutException:
        return FetchResult(feed, error=f"timed out after {timeout:g} s")
    except httpx.HTTPError as exc:
        return FetchResult(
            feed, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        )


def _read_file(feed: FeedSource, max_bytes: int) -> FetchResult:
    path = Path(feed.location)
    try:
        if path.stat().st_size > max_bytes:
            return FetchResult(feed, error=f"file larger than {max_bytes:,} bytes; gave up")
        return FetchResult(feed, path.read_bytes())
    except FileNotFoundError:
        return FetchResult(feed, error=f"file not found: {path}")
    except OSError as exc:
        return FetchResult(feed, error=f"cannot read {path}: {exc.strerror}")


async def fetch_all(
    feeds: Sequence[FeedSource],
    *,
    timeout: float,
    max_concurrency: int,
    contact_url: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[FetchResult]:
    """Fetch every feed, at most ``max_concurrency`` at once; results in the order of ``feeds``."""
    limit = asyncio.Semaphore(max_concurrency)

    async def one(client: httpx.AsyncClient, feed: FeedSource) -> FetchResult:
        async with limit:
            return await fetch_feed(client, feed, timeout=timeout, max_bytes=max_bytes)

    async with httpx.AsyncClient(
        headers={"User-Agent": user_agent(contact_url)},
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=max_concurrency),
        transport=transport,
    ) as client:
        return list(await asyncio.gather(*(one(client, feed) for feed in feeds)))


def parse_feed(
    content: bytes, feed: FeedSource, *, headers: Mapping[str, str], now: datetime
) -> tuple[list[Story], list[str]]:
    """Parse feed bytes into stories (and warnings), or raise ``FeedError`` saying what came."""
    parsed: Any = feedparser.parse(
        content, response_headers={k.lower(): v for k, v in headers.items()}
    )
    entries = parsed.get("entries") or []
    warnings: list[str] = []
    if not entries:
        if parsed.get("version") and not parsed.get("bozo"):
            return [], warnings
        raise FeedError(
            describe_non_feed(content, parsed),
            hint=f"Check that {feed.url} is the address of an RSS or Atom feed.",
        )
    if parsed.get("bozo"):
        warnings.append(f"feed is not well-formed ({parsed.get('bozo_exception')}); used anyway")
    stories: list[Story] = []
    skipped = 0
    for entry in entries:
        story = _entry_to_story(entry, feed, now)
        if story is None:
            skipped += 1
        else:
            stories.append(story)
    if skipped:
        warnings.append(
            f"{skipped} entr{'y' if skipped == 1 else 'ies'} without an http(s) link skipped"
        )
    return stories, warnings


def describe_non_feed(content: bytes, parsed: Any) -> str:
    """Say what was received instead of a feed."""
    head = content[:2048].lstrip().lower()
    if not head:
        return "empty response, not a feed"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]:
        return "received an HTML page, not a feed"
    if b"<urlset" in head or b"<sitemapindex" in head:
        return "received a sitemap, not a feed"
    if head.startswith((b"{", b"[")):
        return "received JSON, not an RSS or Atom feed"
    problem = parsed.get("bozo_exception")
    return f"not a readable feed ({problem})" if problem else "not a readable feed"


def _entry_to_story(entry: Any, feed: FeedSource, now: datetime) -> Story | None:
    link = _story_link(entry)
    if link is None:
        return None
    title = to_plain_text(entry.get("title") or "")
    raw_summary = entry.get("summary") or ""
    if not raw_summary and entry.get("content"):
        raw_summary = entry["content"][0].get("value") or ""
    summary = teaser(to_plain_text(raw_summary))
    if not title:
        if not summary:
            return None
        title = teaser(summary, 100)
    guid = entry.get("id") or ""
    published = _entry_time(entry, now)
    return Story(
        id=story_id(feed.url, guid=guid, link=link, title=title, summary=summary),
        title=title,
        url=link,
        summary=summary,
        source=feed.name,
        published=published,
        feed_url=feed.url,
    )


def _story_link(entry: Any) -> str | None:
    candidates: list[str] = []
    if entry.get("link"):
        candidates.append(entry["link"])
    for item in entry.get("links") or []:
        if item.get("rel", "alternate") == "alternate" and item.get("href"):
            candidates.append(item["href"])
    guid = entry.get("id") or ""
    if guid:
        candidates.append(guid)
    for candidate in candidates:
        candidate = candidate.strip()
        if urlsplit(candidate).scheme.lower() in {"http", "https"} and urlsplit(candidate).netloc:
            return canonical_url(candidate)
    return None


def _entry_time(entry: Any, now: datetime) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
            return min(when, now)  # a date in the future is clamped to now
    return now


def canonical_url(url: str) -> str:
    """The link without tracking parameters or fragment, with scheme and host lower-cased."""
    parts = urlsplit(url.strip())
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), "")
    )


def story_id(feed_url: str, *, guid: str, link: str, title: str, summary: str) -> str:
    """Stable id within a feed: from the GUID, else the canonical link, else the text."""
    if guid:
        key = "guid\n" + guid.strip()
    elif link:
        key = "link\n" + canonical_url(link)
    else:
        key = "text\n" + title + "\n" + summary
    return hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()[:16]


def to_plain_text(fragment: str) -> str:
    """Sanitise HTML with nh3 and return plain text: no tags, entities decoded, spaces collapsed."""
    text = fragment
    for _ in range(3):  # double-encoded HTML ("&lt;b&gt;") shows its tags only after unescaping
        text = _BLOCK_TAG.sub(" ", text)
        text = html.unescape(nh3.clean(text, tags=set(), attributes={}))
        if not _TAG.search(text):
            break
    else:  # still tags after three rounds: drop what looks like one rather than keep markup
        text = _TAG_LIKE.sub("", text)
    return _SPACE.sub(" ", text).strip()


def teaser(text: str, length: int = TEASER_LENGTH) -> str:
    """Cut plain text at a sentence end, else a word boundary, near ``length`` characters."""
    if len(text) <= length:
        return text
    window = text[: length + 1]
    sentence_end = max(window.rfind(mark) for mark in (". ", "! ", "? "))
    if sentence_end >= length // 2:
        return window[: sentence_end + 1]
    space = window.rfind(" ")
    cut = window[:space] if space >= length // 2 else window[:length]
    return cut.rstrip(" ,;:-") + "…"
