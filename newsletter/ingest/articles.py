"""Teasers from article pages, for stories whose feed gives none worth reading.

``needs_teaser`` says which stories qualify (no summary, one that repeats the headline, or one
shorter than ``min_length``). ``fetch_leads`` fetches their pages politely, with the same kind
of limits as feeds (a total deadline per page, connect and read timeouts, a byte cap as sent and
decompressed, one request at a time per host and many hosts at once, robots.txt read once per
host, an overall time budget), and takes each page's lead with trafilatura; it never raises for
network trouble, it reports it. Each host's name is looked up first, once, for at most
``resolve_timeout``: the pages of a host that does not resolve are left for a later run (one
bounded look-up per run, not a resolver's wait per page). The caller stores every other
outcome, so a story's page is fetched at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import urllib.robotparser
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from newsletter.config.settings import CollectConfig
from newsletter.ingest.collect import PageClient, Transport
from newsletter.records import PageToFetch
from newsletter.text import headline_key, teaser, to_plain_text

logger = logging.getLogger(__name__)

_HTML = frozenset({"text/html", "application/xhtml+xml"})
_DENY = ["User-agent: *", "Disallow: /"]


@dataclass(frozen=True, slots=True)
class PageLimits:
    """How far fetching article pages goes; the values (and defaults) are ``collect:``'s."""

    timeout: float  # seconds for one page, robots.txt excluded
    connect_timeout: float
    read_timeout: float
    max_bytes: int  # the page, as sent and decompressed
    max_concurrency: int  # pages under way at once (one per host)
    budget: float  # seconds for the whole run; pages not reached wait for the next one
    min_length: int  # a feed summary shorter than this asks for the page's lead
    resolve_timeout: float = 2.0  # seconds for looking up one host's name

    @classmethod
    def from_config(cls, collect: CollectConfig | None = None) -> PageLimits:
        collect = collect or CollectConfig()
        teasers = collect.teasers
        return cls(
            timeout=teasers.timeout_seconds,
            connect_timeout=min(collect.connect_timeout_seconds, teasers.timeout_seconds),
            read_timeout=min(collect.read_timeout_seconds, teasers.timeout_seconds),
            max_bytes=teasers.max_bytes,
            max_concurrency=min(collect.max_concurrency, 16),
            budget=teasers.budget_seconds,
            min_length=teasers.min_length,
            resolve_timeout=teasers.resolve_seconds,
        )


@dataclass(frozen=True, slots=True)
class Lead:
    """The outcome for one story: the teaser taken from its page, or why there is none."""

    story_id: str
    teaser: str | None
    error: str | None


def needs_teaser(title: str, summary: str, min_length: int) -> bool:
    """No summary, one that only repeats the headline, or one too short to tell the story."""
    text = summary.strip()
    if len(text) < min_length:
        return True
    head, body = headline_key(title), headline_key(text)
    return body == head or (body.startswith(head) and len(body) < len(head) + 20)


def extract_lead(page: str, title: str, length: int = 300) -> str | None:
    """The first paragraph of the article's main text that is not the headline, as a teaser."""
    import trafilatura  # imported when a page is read: it is heavy, and most runs need none

    text = trafilatura.extract(
        page, include_comments=False, include_tables=False, favor_precision=True
    )
    if not text:
        return None
    head = headline_key(title)
    for paragraph in text.split("\n"):
        plain = to_plain_text(paragraph)
        if len(plain) >= 40 and headline_key(plain) != head:
            return teaser(plain, length)
    return None


class _Robots:
    """robots.txt per host, fetched once per run. Unreachable (timeout, 5xx) means disallowed;
    missing (4xx) means allowed (RFC 9309)."""

    def __init__(self, client: PageClient, limits: PageLimits) -> None:
        self._client = client
        self._limits = limits
        self._parsers: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        async with self._locks[origin]:
            if origin not in self._parsers:
                self._parsers[origin] = await self._fetch(origin)
        parser = self._parsers[origin]
        return parser is None or parser.can_fetch(self._client.agent, url)

    async def _fetch(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        page = await self._client.get(
            origin + "/robots.txt", timeout=self._limits.timeout, max_bytes=self._limits.max_bytes
        )
        if 400 <= page.status < 500:
            return None  # no robots.txt: everything is allowed
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(_DENY if page.error is not None else page.text[:500_000].splitlines())
        return parser


async def _fetch_page(
    client: PageClient, robots: _Robots, task: PageToFetch, limits: PageLimits
) -> Lead:
    if not await robots.allowed(task.url):
        return Lead(task.id, None, "robots.txt disallows fetching this page")
    page = await client.get(
        task.url, timeout=limits.timeout, max_bytes=limits.max_bytes, kinds=_HTML
    )
    if page.error is not None:
        return Lead(task.id, None, page.error)
    lead = await asyncio.to_thread(extract_lead, page.text, task.title)
    return Lead(task.id, lead, None if lead else "no readable lead in the page")


Resolve = Callable[[str, int], object]  # looks a host's name up; raises OSError if it cannot


def _getaddrinfo(host: str, port: int) -> object:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


async def resolving_hosts(
    urls: Sequence[str], *, timeout: float, resolve: Resolve = _getaddrinfo
) -> set[str]:
    """The hosts of ``urls`` whose name resolves within ``timeout``, all looked up at once.

    Each look-up runs in a daemon thread of its own: a resolver that hangs is given up after
    ``timeout`` and never holds the run (nor the process's exit) for its own wait."""
    loop = asyncio.get_running_loop()
    hosts = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.hostname:
            hosts[parts.hostname] = parts.port or (443 if parts.scheme == "https" else 80)

    def look_up(host: str, port: int, done: asyncio.Future[bool]) -> None:
        try:
            resolve(host, port)
            ok = True
        except (OSError, UnicodeError):
            ok = False
        with contextlib.suppress(RuntimeError):  # the run gave up on it and ended
            loop.call_soon_threadsafe(_settle, done, ok)

    futures = {}
    for host, port in hosts.items():
        futures[host] = loop.create_future()
        threading.Thread(target=look_up, args=(host, port, futures[host]), daemon=True).start()
    if futures:
        await asyncio.wait(futures.values(), timeout=timeout)
    return {h for h, f in futures.items() if f.done() and not f.cancelled() and f.result()}


async def _on_live_hosts(
    tasks: Sequence[PageToFetch], limits: PageLimits, resolve: Resolve, limit: int
) -> list[PageToFetch]:
    """The first ``limit`` tasks whose host resolves. Hosts are looked up as the tasks need
    them (at most three rounds, each host once, each round at most ``resolve_timeout``), so
    a run does not start a thread for every host of a long backlog."""
    alive: set[str] = set()
    dead: set[str] = set()
    for _ in range(3):
        chosen = [t for t in tasks if urlsplit(t.url).hostname not in dead][:limit]
        unknown = [t.url for t in chosen if urlsplit(t.url).hostname not in alive]
        if not unknown:
            break
        found = await resolving_hosts(unknown, timeout=limits.resolve_timeout, resolve=resolve)
        alive |= found
        dead |= {urlsplit(u).hostname or "" for u in unknown} - found
    if dead:
        logger.warning(
            "article pages: %d hosts did not resolve within %.1f s (%s); their pages wait for "
            "a later run",
            len(dead),
            limits.resolve_timeout,
            ", ".join(sorted(dead)[:5]),
        )
    return [t for t in tasks if urlsplit(t.url).hostname in alive][:limit]


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


async def fetch_leads(
    tasks: Sequence[PageToFetch],
    *,
    contact_url: str,
    limits: PageLimits | None = None,
    transport: Transport | None = None,
    resolve: Resolve = _getaddrinfo,
    limit: int | None = None,
) -> list[Lead]:
    """Fetch the pages of ``tasks`` (the first ``limit`` of them on hosts that resolve) and
    take their leads; pages not reached within the budget, or on a host that does not
    resolve, are left out of the result (and so fetched on a later run)."""
    limits = limits or PageLimits.from_config()
    tasks = await _on_live_hosts(tasks, limits, resolve, len(tasks) if limit is None else limit)
    client = PageClient(
        contact_url=contact_url,
        read_timeout=limits.read_timeout,
        connect_timeout=limits.connect_timeout,
        transport=transport,
    )
    robots = _Robots(client, limits)
    overall = asyncio.Semaphore(limits.max_concurrency)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(1))
    done: list[Lead] = []

    async def one(task: PageToFetch) -> None:
        host = urlsplit(task.url).netloc.lower()
        async with per_host[host], overall:
            done.append(await _fetch_page(client, robots, task, limits))

    jobs = [asyncio.ensure_future(one(task)) for task in tasks]
    try:
        await asyncio.wait(jobs, timeout=limits.budget) if jobs else None
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await client.aclose()
    if len(done) < len(tasks):
        logger.info("article pages: %d of %d fetched within the budget", len(done), len(tasks))
    return done
