"""Fetch feeds concurrently and politely, then parse each answer into stories.

``fetch_feed`` does the I/O for one feed: a conditional GET (ETag, Last-Modified), redirects
followed by hand (301/308 are reported so the store can remember them, 302/307 are not, and only
a bounded number), a total deadline on top of connect and read timeouts, and a cap on the body
both as sent and after decompression (decompressed here, in bounded steps, so a gzip bomb costs
at most the cap). ``collect_feeds`` runs every feed under a global and a per-host limit and parses
each answer as it arrives. One broken feed never stops the others: its error comes back in its
``Collected``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import certifi
import httpx

from newsletter import __version__
from newsletter.errors import FeedError
from newsletter.ingest.bodies import TooBig, bounded_body
from newsletter.ingest.fetching import Collected, FetchLimits, FetchResult, network_failure
from newsletter.ingest.parse import parse_job, parse_pool
from newsletter.models import FeedSource, Story
from newsletter.records import FeedState
from newsletter.runtime import light_workers

logger = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})


def user_agent(contact_url: str) -> str:
    return f"newsletter/{__version__} (+{contact_url})"


async def fetch_feed(
    client: httpx.AsyncClient,
    feed: FeedSource,
    state: FeedState | None = None,
    *,
    limits: FetchLimits | None = None,
) -> FetchResult:
    """Fetch one feed within ``limits``; never raises for network trouble, it reports it."""
    limits = limits or FetchLimits.from_config()
    if not feed.location.startswith(("http://", "https://")):
        return _read_file(feed, limits.max_bytes)
    state = state or FeedState()
    url = state.current_url or feed.location
    headers: dict[str, str] = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        async with asyncio.timeout(limits.total_timeout):
            # httpx follows the redirects (``_refuse_non_web`` checks each); its history says
            # whether the chain began with permanent moves, which the store then follows
            request = client.build_request("GET", url, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=True)
            try:
                return await _answer(feed, response, limits.max_bytes)
            finally:
                await response.aclose()
    except TimeoutError:
        return FetchResult(feed, error=f"timed out after {limits.total_timeout:g} s")
    except httpx.TooManyRedirects:
        return FetchResult(feed, error=f"more than {limits.max_redirects} redirects")
    except TooBig as exc:
        return FetchResult(feed, error=str(exc))
    except FeedError as exc:
        return FetchResult(feed, error=exc.message)
    except httpx.HTTPError as exc:
        reason, unreachable = plain_reason(exc)
        return FetchResult(feed, error=reason, unreachable=unreachable)


async def _answer(feed: FeedSource, response: httpx.Response, max_bytes: int) -> FetchResult:
    """What one answer (after any redirects) says: not modified, gone, an HTTP error, or the
    body within ``max_bytes``."""
    moved_to = _permanent_move(response)
    code = response.status_code
    if code == 304:
        return FetchResult(feed, status=304, not_modified=True, moved_to=moved_to)
    if code == 410:
        return FetchResult(feed, status=410, gone=True, error="HTTP 410 Gone: the feed was removed")
    if code in _REDIRECTS:  # one httpx would not follow: it named no place
        return FetchResult(
            feed, status=code, error=f"HTTP {code} redirect without a Location header"
        )
    if code >= 400:
        reason = response.reason_phrase or "error"
        wait = response.headers.get("retry-after", "") if code in (429, 503) else ""
        error = f"HTTP {code} {reason}"
        return FetchResult(feed, status=code, error=error, moved_to=moved_to, retry_after=wait)
    body = await read_body(response, max_bytes)
    lowered = {k.lower(): v for k, v in response.headers.items()}
    lowered.setdefault("content-location", str(response.url))
    lowered.pop("content-encoding", None)  # decoded already
    return FetchResult(feed, body, lowered, code, moved_to=moved_to)


async def _parsed(
    job: tuple[bytes, FeedSource, dict[str, str], datetime],
    pool: ProcessPoolExecutor | None,
    broken: list[bool],
    loop: asyncio.AbstractEventLoop,
) -> tuple[list[Story], list[str], str | None, list[str]]:
    """``parse_job`` in the worker pool (here when there is none, or once it broke)."""
    if pool is None:
        return parse_job(*job)
    try:
        return await loop.run_in_executor(pool, parse_job, *job)
    # a worker died, or the pool could not start one (its fork server gone: an OSError from
    # submit itself): parse here from now on
    except (BrokenProcessPool, OSError) as exc:
        if not broken:
            logger.warning("parse workers failed (%s); parsing in this process", exc)
        broken.append(True)
        return parse_job(*job)


def _permanent_move(response: httpx.Response) -> str | None:
    """Where the chain of 301/308s at the start of the redirects led, if it began with one."""
    hops = [*response.history, response]
    moved_to = None
    for hop, after in itertools.pairwise(hops):
        if hop.status_code not in _PERMANENT:
            break
        moved_to = str(after.request.url)
    return moved_to


async def _refuse_non_web(response: httpx.Response) -> None:
    """A response hook: a redirect to anything but http(s) ends the fetch, saying where."""
    if response.status_code in _REDIRECTS and "location" in response.headers:
        target = urljoin(str(response.url), response.headers["location"])
        if urlsplit(target).scheme not in {"http", "https"}:
            raise FeedError(f"redirected to a non-web address: {target}")


def plain_reason(exc: httpx.HTTPError) -> tuple[str, bool]:
    """A network error in plain words (never its repr), and whether the host was never
    reached: "name not resolved", "could not connect (connection refused)", "timed out"."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting", True
    if isinstance(exc, httpx.ReadTimeout):
        return "timed out waiting for data", False
    if isinstance(exc, httpx.TimeoutException):
        return "timed out on the network", False
    said = network_failure(exc)
    if said is not None:
        return said
    if isinstance(exc, httpx.ConnectError):
        return "could not connect", True
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke off its answer", False
    if isinstance(exc, httpx.NetworkError):
        return "the connection broke off", False
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "not an address that can be fetched", False
    return "network error", False


async def read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, decompressed here in bounded steps; raises ``TooBig`` past ``max_bytes``."""
    return await bounded_body(response.aiter_raw(), response.headers, max_bytes)


def _read_file(feed: FeedSource, max_bytes: int) -> FetchResult:
    path = Path(feed.location)
    try:
        if path.stat().st_size > max_bytes:
            return FetchResult(feed, error=f"file larger than {max_bytes:,} bytes; gave up")
        return FetchResult(feed, path.read_bytes(), status=200)
    except FileNotFoundError:
        return FetchResult(feed, error=f"file not found: {path}")
    except OSError as exc:
        return FetchResult(feed, error=f"cannot read {path}: {exc.strerror}")


def make_client(
    limits: FetchLimits,
    *,
    contact_url: str,
    transport: Transport | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_connections: int | None = None,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={
            "User-Agent": user_agent(contact_url),
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
            "text/xml;q=0.9, */*;q=0.5",
            "Accept-Encoding": "gzip, deflate",
        },
        timeout=httpx.Timeout(
            limits.read_timeout,
            connect=limits.connect_timeout,
            pool=limits.total_timeout,
        ),
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        event_hooks={"response": [_refuse_non_web]},
        limits=httpx.Limits(
            max_connections=max_connections or limits.max_concurrency,
            max_keepalive_connections=max_connections or limits.max_concurrency,
        ),
        verify=ssl_context or True,
        transport=transport,
    )


Transport = httpx.AsyncBaseTransport  # a test's transport in place of the network


@dataclass(frozen=True, slots=True)
class Page:
    """A web page's answer: the status and text, or why there is none."""

    status: int = 0
    text: str = ""
    error: str | None = None


class PageClient:
    """Web pages other than feeds (article pages, robots.txt), with the feeds' kind of limits:
    a deadline per page, a byte cap as sent and decompressed, at most five redirects. ``get``
    never raises for network trouble; it reports it."""

    def __init__(
        self,
        *,
        contact_url: str,
        read_timeout: float,
        connect_timeout: float,
        transport: Transport | None = None,
    ) -> None:
        self.agent = user_agent(contact_url)
        self._client = httpx.AsyncClient(
            headers={
                "User-Agent": self.agent,
                "Accept": "text/html, application/xhtml+xml;q=0.9",
                "Accept-Encoding": "gzip, deflate",  # what read_body decodes
            },
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
        )

    async def get(
        self, url: str, *, timeout: float, max_bytes: int, kinds: frozenset[str] | None = None
    ) -> Page:
        """The page at ``url``; with ``kinds``, a page of another content type is not read."""
        try:
            async with asyncio.timeout(timeout):
                async with self._client.stream("GET", url) as response:
                    code = response.status_code
                    if code >= 300:
                        return Page(code, error=f"HTTP {code}")
                    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if kinds is not None and kind and kind not in kinds:
                        return Page(code, error=f"not an HTML page ({kind})")
                    body = await read_body(response, max_bytes)
                    encoding = response.encoding or "utf-8"
        except TimeoutError:
            return Page(error=f"timed out after {timeout:g} s")
        except TooBig as exc:
            return Page(error=str(exc))
        except FeedError as exc:
            return Page(error=exc.message)
        except httpx.HTTPError as exc:
            return Page(error=plain_reason(exc)[0])
        try:
            return Page(code, body.decode(encoding, errors="replace"))
        except LookupError:
            return Page(code, body.decode("utf-8", errors="replace"))

    async def aclose(self) -> None:
        await self._client.aclose()


class _Clients:
    """One HTTP client per host, sharing one TLS context.

    httpcore's pool looks at every connection for every request, so one big pool for hundreds
    of feeds spends most of its time choosing a connection; a small pool per host does not.
    """

    def __init__(self, limits: FetchLimits, contact_url: str, transport: Transport | None) -> None:
        self._limits = limits
        self._contact_url = contact_url
        self._transport = transport
        self._ssl: ssl.SSLContext | None = None
        self._clients: dict[str, httpx.AsyncClient] = {}

    def for_host(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is None:
            if self._ssl is None:
                self._ssl = ssl.create_default_context(cafile=certifi.where())
            client = make_client(
                self._limits,
                contact_url=self._contact_url,
                transport=self._transport,
                ssl_context=self._ssl,
                max_connections=self._limits.max_per_host,
            )
            self._clients[host] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


async def collect_feeds(
    feeds: Sequence[FeedSource],
    *,
    states: Mapping[str, FeedState],
    now: datetime,
    contact_url: str,
    limits: FetchLimits | None = None,
    transport: Transport | None = None,
    parse_workers: int = 1,
) -> AsyncIterator[Collected]:
    """Fetch and parse every feed, yielding one ``Collected`` per feed as each is done.

    Each answer is parsed as soon as it arrives, while other fetches wait on the network, and
    the caller can store it at once. With ``parse_workers`` above 1, parsing (feedparser is
    CPU-bound) runs in that many processes.
    """
    limits = limits or FetchLimits.from_config()
    overall = asyncio.Semaphore(limits.max_concurrency)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(limits.max_per_host)
    )
    pool = parse_pool(parse_workers)
    loop = asyncio.get_running_loop()
    clients = _Clients(limits, contact_url, transport)
    broken: list[bool] = []  # set once the worker pool has failed

    async def one(feed: FeedSource) -> Collected:
        state = states.get(feed.url)
        host = urlsplit((state and state.current_url) or feed.location).netloc.lower()
        async with per_host[host], overall:
            started = time.perf_counter()
            fetched = await fetch_feed(clients.for_host(host), feed, state, limits=limits)
        if fetched.content is None:
            return Collected(fetched, error=fetched.error, seconds=time.perf_counter() - started)
        job = (fetched.content, feed, dict(fetched.headers), now)
        parsed = await _parsed(job, None if broken else pool, broken, loop)
        stories, warnings, error, languages = parsed
        seconds = time.perf_counter() - started
        return Collected(fetched, tuple(stories), tuple(warnings), error, seconds, tuple(languages))

    with light_workers():  # the workers start with the first jobs
        try:
            tasks = [asyncio.ensure_future(one(feed)) for feed in feeds]
            try:
                for next_done in asyncio.as_completed(tasks):
                    yield await next_done
            finally:
                for task in tasks:
                    task.cancel()
                await clients.aclose()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
