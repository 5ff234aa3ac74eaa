"""What a collection works with and gives back: its limits (from ``collect:``), each feed's
answer, and the stories parsed from it."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from newsletter.config.settings import CollectConfig
from newsletter.models import FeedSource, Story


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How far one collection goes; the values (and their defaults) are ``collect:``'s."""

    total_timeout: float  # seconds for the whole fetch of one feed, redirects included
    connect_timeout: float
    read_timeout: float  # the longest wait for the next bytes
    max_bytes: int  # the body, as sent and after decompression
    max_concurrency: int  # fetches under way at once
    max_per_host: int  # fetches under way at once to one host
    max_redirects: int

    @classmethod
    def from_config(cls, collect: CollectConfig | None = None) -> FetchLimits:
        collect = collect or CollectConfig()
        return cls(
            total_timeout=collect.timeout_seconds,
            connect_timeout=collect.connect_timeout_seconds,
            read_timeout=collect.read_timeout_seconds,
            max_bytes=collect.max_bytes,
            max_concurrency=collect.max_concurrency,
            max_per_host=collect.max_per_host,
            max_redirects=collect.max_redirects,
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The answer for one feed: bytes and lower-cased headers, or not-modified, gone, an error."""

    feed: FeedSource
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None
    error: str | None = None
    not_modified: bool = False
    gone: bool = False
    moved_to: str | None = None  # the end of an unbroken chain of permanent redirects
    retry_after: str = ""  # a 429's or 503's Retry-After header, as sent
    # the host was never reached (its name not resolved, no connection): on a machine off the
    # network every feed fails so
    unreachable: bool = False


@dataclass(frozen=True, slots=True)
class Collected:
    """A fetch and, when it brought a feed, the stories parsed from it."""

    fetch: FetchResult
    stories: tuple[Story, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None  # the fetch's error, or why the body is not a feed
    seconds: float = 0.0
    languages: tuple[str, ...] = ()  # each story's judged language, in order ("" unknown)


# connection failures that mean the host was never reached, in words
_NOT_REACHED = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETDOWN: "network down",
}


def network_failure(exc: BaseException) -> tuple[str, bool] | None:
    """What a network error's causes say in plain words ("name not resolved", "could not
    connect (connection refused)"), and whether the host was never reached; None when they
    say nothing plainer than the error itself."""
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in seen:
        seen.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in seen:
        if isinstance(cause, socket.gaierror):
            return "name not resolved", True
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "the site's certificate was not accepted", False
        if isinstance(cause, ssl.SSLError):
            return "the secure connection (TLS) failed", False
        if isinstance(cause, OSError) and cause.errno in _NOT_REACHED:
            return f"could not connect ({_NOT_REACHED[cause.errno]})", True
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return "the connection was cut off", False
    return None
