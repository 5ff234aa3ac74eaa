"""Every real-world and feedparser test file, collected through a local server: no crash, every
readable entry becomes a story, and nothing unsafe survives in what is stored."""

from __future__ import annotations

import re
from pathlib import Path

import feedparser
import pytest

from newsletter import flows
from newsletter.config import load_config
from newsletter.models import FetchOutcome
from newsletter.store import Store
from newsletter.text import web_url
from tests.conftest import NOW, SHARED, write_config
from tests.feedserver import FeedServer

CORPUS = SHARED / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")

_HEADER = re.compile(rb"^Header:\s*([\w-]+):\s*(.*?)\s*$", re.M)
_MARKUP = re.compile(r"<[a-zA-Z/!?]")
_SCRIPT = re.compile(r"(?i)javascript:|vbscript:")


def _files() -> list[Path]:
    folders = [CORPUS / "feeds", CORPUS / "feedparser"]
    return sorted(
        p for folder in folders for p in folder.rglob("*") if p.suffix in {".xml", ".json"}
    )


def _headers(body: bytes) -> dict[str, str]:
    """The HTTP headers a feedparser test case asks for in its leading comment."""
    head = body[:2000]
    headers = {"Content-Type": "application/xml"}
    for name, value in _HEADER.findall(head):
        headers[name.decode().title()] = value.decode("latin-1")
    return headers


@pytest.mark.slow  # every real-world file through the whole collection: about 12 s
def test_every_corpus_file_is_collected_safely(feed_server: FeedServer, tmp_path: Path) -> None:
    files = _files()
    assert len(files) > 2000
    feeds = []
    served: dict[str, tuple[bytes, dict[str, str]]] = {}
    for i, path in enumerate(files):
        body = path.read_bytes()
        headers = _headers(body)
        url = feed_server.add(f"/{i}/{path.name}", body, headers=headers)
        served[url] = (body, headers)
        feeds.append({"name": f"{path.parent.name}/{path.name}#{i}", "url": url})
    config = load_config(
        write_config(
            tmp_path, {"feeds": feeds, "collect": {"timeout_seconds": 30, "max_per_host": 16}}
        )
    )
    store = Store.open(config.database_url)
    report = flows.collect_all(config, store, now=NOW)

    assert len(report.results) == len(files)
    for result in report.results:
        assert result.status in {FetchOutcome.OK, FetchOutcome.FAILED}, result
        if result.status == FetchOutcome.FAILED:
            assert result.error, result

    stored: dict[str, set[str]] = {}
    for story in store.stories.stored():
        stored.setdefault(story.feed_url, set()).add(story.url)
        for text in (story.title, story.summary):
            assert not _MARKUP.search(text), (story.feed_url, text)
            assert not _SCRIPT.search(text), (story.feed_url, text)
        assert story.url.startswith(("http://", "https://"))

    missing = []
    readable = 0
    for url, (body, headers) in served.items():
        expected = _readable_links(body, headers, url)
        if expected:
            readable += 1
        lost = expected - stored.get(url, set())
        if lost:
            missing.append((url, sorted(lost)[:3]))
    assert readable >= 50  # the 36 real feeds and the feedparser cases that have links
    assert missing == []


def _readable_links(body: bytes, headers: dict[str, str], url: str) -> set[str]:
    """Links of the entries bare feedparser reads, which must each become a story."""
    lowered = {k.lower(): v for k, v in headers.items()}
    lowered.setdefault("content-location", url)
    parsed = feedparser.parse(body, response_headers=lowered)
    links = set()
    guids: set[str] = set()
    for entry in parsed.entries:
        guid = (entry.get("id") or "").strip()
        if guid and guid in guids:
            continue  # a repeated GUID is the same story
        guids.add(guid)
        link = web_url(entry.get("link") or "")
        if link:
            links.add(link)
    return links
