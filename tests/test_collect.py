"""Fetching against real local HTTP servers: failures, limits, politeness, conditional GET."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import time
import zlib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.flows.build import build
from newsletter.ingest.collect import collect_feeds
from newsletter.ingest.fetching import Collected, FetchLimits
from newsletter.models import FeedSource, FetchOutcome
from newsletter.records import FeedState
from newsletter.store import Store
from tests.conftest import NOW, ROOT, write_config
from tests.feedserver import FeedServer, Tracker, http_date, serve

FEED_XML = (ROOT / "examples/demo/feeds/charge-lane.xml").read_bytes()
DEFAULT_LIMITS = FetchLimits.from_config()
QUICK = replace(
    DEFAULT_LIMITS, total_timeout=1.0, connect_timeout=1.0, read_timeout=1.0, max_bytes=1_000_000
)


def source(url: str, name: str = "") -> FeedSource:
    return FeedSource(name=name or url.rsplit("/", 1)[-1], url=url, location=url)


def collect(
    sources: list[FeedSource],
    limits: FetchLimits = QUICK,
    states: dict[str, FeedState] | None = None,
) -> dict[str, Collected]:
    async def run() -> list[Collected]:
        return [
            item
            async for item in collect_feeds(
                sources,
                states=states or {},
                now=NOW,
                contact_url="https://pub.example.com/c",
                limits=limits,
            )
        ]

    return {c.fetch.feed.name: c for c in asyncio.run(run())}


def test_failures_are_reported_by_name_and_the_rest_collected(feed_server: FeedServer) -> None:
    good = source(feed_server.add("/good.xml", FEED_XML), "Good")
    missing = source(feed_server.url("/missing.xml"), "Missing")
    slow = source(feed_server.add("/slow.xml", FEED_XML, delay=30), "Slow")
    page = source(feed_server.add("/page", "<html><body>hi</body></html>"), "Page")
    started = time.monotonic()
    results = collect([good, missing, slow, page])
    assert time.monotonic() - started < 2.5  # the silent server cost its timeout, not 30 s
    assert len(results["Good"].stories) == 4 and results["Good"].error is None
    assert results["Missing"].error == "HTTP 404 Not Found"
    assert results["Slow"].error is not None and "timed out" in results["Slow"].error
    assert results["Page"].error == "received an HTML page, not a feed"
    agents = {headers.get("User-Agent") for _, headers in feed_server.requests}
    assert agents == {"newsletter/0.1.0 (+https://pub.example.com/c)"}


def test_a_server_that_drips_costs_only_the_total_timeout(feed_server: FeedServer) -> None:
    drip = source(feed_server.add("/drip.xml", FEED_XML, drip=0.2), "Drip")
    good = source(feed_server.add("/good.xml", FEED_XML), "Good")
    started = time.monotonic()
    results = collect([drip, good])
    assert time.monotonic() - started < 2.0  # 1 s total timeout, though every read is quick
    assert results["Drip"].error == "timed out after 1 s"
    assert len(results["Good"].stories) == 4


def test_huge_body_is_cut_off_at_the_cap(feed_server: FeedServer) -> None:
    limits = replace(DEFAULT_LIMITS, total_timeout=10, max_bytes=5_000_000)
    big = source(feed_server.add("/big.xml", FEED_XML, stream=200 * 1024 * 1024), "Big")
    declared = source(feed_server.add("/declared.xml", FEED_XML + b" " * 6_000_000), "Declared")
    good = source(feed_server.add("/good.xml", FEED_XML), "Good")
    started = time.monotonic()
    results = collect([big, declared, good], limits)
    assert time.monotonic() - started < 5
    assert results["Big"].error == "response larger than 5,000,000 bytes; gave up"
    assert results["Declared"].error == "response larger than 5,000,000 bytes; gave up"
    assert len(results["Good"].stories) == 4


def _gzip_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(size // len(block))) + packer.flush()


def test_gzip_bomb_is_cut_off_at_the_decompressed_cap(feed_server: FeedServer) -> None:
    bomb = _gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 300_000
    headers = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
    url = feed_server.add("/bomb.xml", bomb, headers=headers)
    zipped = feed_server.add("/zipped.xml", gzip.compress(FEED_XML), headers=headers)
    limits = replace(DEFAULT_LIMITS, total_timeout=10, max_bytes=5_000_000)
    started = time.monotonic()
    results = collect([source(url, "Bomb"), source(zipped, "Zipped")], limits)
    assert time.monotonic() - started < 3
    assert results["Bomb"].error == "response larger than 5,000,000 bytes; gave up"
    assert len(results["Zipped"].stories) == 4  # an honest gzip body is decoded
    assert all("gzip" in h.get("Accept-Encoding", "") for _, h in feed_server.requests)


def test_concurrency_is_bounded_per_host_and_overall() -> None:
    tracker = Tracker()
    with serve("127.0.0.1", tracker) as one, serve("127.0.0.2", tracker) as two:
        sources = [
            source(server.add(f"/f{i}.xml", FEED_XML, delay=0.2), f"{server.base}/{i}")
            for server in (one, two)
            for i in range(6)
        ]
        per_host = replace(DEFAULT_LIMITS, max_concurrency=50, max_per_host=2)
        collect(sources[:6], per_host)
        assert tracker.peak == 2
        tracker.peak = 0
        collect(sources, replace(DEFAULT_LIMITS, max_concurrency=3, max_per_host=2))
        assert tracker.peak == 3


def test_redirect_loops_are_bounded(feed_server: FeedServer) -> None:
    feed_server.add("/a", status=302, headers={"Location": "/b"})
    feed_server.add("/b", status=302, headers={"Location": "/a"})
    results = collect([source(feed_server.url("/a"), "Loop")])
    assert results["Loop"].error == "more than 5 redirects"


def test_redirect_to_a_non_web_address_is_refused(feed_server: FeedServer) -> None:
    feed_server.add("/r", status=301, headers={"Location": "file:///etc/passwd"})
    results = collect([source(feed_server.url("/r"), "Sly")])
    assert results["Sly"].error == "redirected to a non-web address: file:///etc/passwd"


def test_nothing_listening_and_no_such_name_are_clear_errors() -> None:
    # a label of 64 letters is no DNS name: refused by the C library before any server is asked
    nowhere = "http://" + "n" * 64 + ".example/feed.xml"
    results = collect([source("http://127.0.0.1:9/feed.xml", "Closed"), source(nowhere, "Nowhere")])
    assert results["Closed"].error == "could not connect (connection refused)"
    assert results["Nowhere"].error == "name not resolved"
    assert results["Closed"].fetch.unreachable and results["Nowhere"].fetch.unreachable


# Through the pipeline and the store: what is remembered between runs.


def _config(tmp_path: Path, feeds: list[dict[str, object]]) -> Config:
    path = write_config(tmp_path, {"feeds": feeds, "collect": {"timeout_seconds": 2}})
    return load_config(path)


@pytest.mark.slow
def test_conditional_get_stores_nothing_new_on_304(feed_server: FeedServer, tmp_path: Path) -> None:
    stamp = http_date(1_790_000_000)
    etag_url = feed_server.add("/etag.xml", FEED_XML, etag='"v1"')
    lm_url = feed_server.add(
        "/lm.xml", FEED_XML.replace(b"chargelane", b"lane"), last_modified=stamp
    )
    config = _config(tmp_path, [{"name": "ETag", "url": etag_url}, {"name": "LM", "url": lm_url}])
    store = Store.open(config.database_url)
    first = flows.collect_all(config, store, now=NOW)
    assert [(r.status, r.new) for r in first.results] == [
        (FetchOutcome.OK, 4),
        (FetchOutcome.OK, 4),
    ]
    second = flows.collect_all(config, store, now=NOW)
    assert [(r.status, r.new) for r in second.results] == [(FetchOutcome.NOT_MODIFIED, 0)] * 2
    sent = [h for path, h in feed_server.requests if path == "/etag.xml"]
    assert "If-None-Match" not in sent[0] and sent[1]["If-None-Match"] == '"v1"'
    sent = [h for path, h in feed_server.requests if path == "/lm.xml"]
    assert sent[1]["If-Modified-Since"] == stamp
    assert len(store.stories.stored()) == 8
    (health,) = [h for h in store.feeds.feed_health(now=NOW) if h.name == "ETag"]
    assert (health.last_status, health.consecutive_failures) == (304, 0)


def test_permanent_redirect_updates_the_url_and_temporary_does_not(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    new_home = feed_server.add("/new.xml", FEED_XML)
    feed_server.add("/old.xml", status=301, headers={"Location": "/new.xml"})
    feed_server.add("/temp.xml", status=307, headers={"Location": "/new.xml"})
    config = _config(
        tmp_path,
        [
            {"name": "Moved", "url": feed_server.url("/old.xml")},
            {"name": "Temp", "url": feed_server.url("/temp.xml")},
        ],
    )
    store = Store.open(config.database_url)
    report = flows.collect_all(config, store, now=NOW)
    assert report.results[0].moved_to == new_home and report.results[1].moved_to is None
    states = store.feeds.feed_states()
    assert states[feed_server.url("/old.xml")].current_url == new_home
    assert states[feed_server.url("/temp.xml")].current_url is None
    feed_server.requests.clear()
    flows.collect_all(config, store, now=NOW)
    assert sorted(path for path, _ in feed_server.requests) == ["/new.xml", "/new.xml", "/temp.xml"]


def test_gone_feed_is_disabled_until_retried(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.add("/gone.xml", status=410)
    config = _config(tmp_path, [{"name": "Gone", "url": url}])
    store = Store.open(config.database_url)
    (result,) = flows.collect_all(config, store, now=NOW).results
    assert (result.status, result.error) == (
        FetchOutcome.GONE,
        "HTTP 410 Gone: the feed was removed",
    )
    feed_server.requests.clear()
    (result,) = flows.collect_all(config, store, now=NOW).results
    assert result.status == FetchOutcome.GONE and "said 410 Gone" in (result.error or "")
    assert feed_server.requests == []
    feed_server.add("/gone.xml", FEED_XML)  # it came back
    (result,) = flows.collect_all(config, store, now=NOW, retry_gone=True).results
    assert (result.status, result.new) == (FetchOutcome.OK, 4)


@pytest.mark.parametrize("wait", ["3600", "Wed, 25 Nov 2026 07:00:00 GMT"])
def test_a_server_that_asks_to_wait_is_not_fetched_before_its_time(
    feed_server: FeedServer, tmp_path: Path, wait: str
) -> None:
    """429 (or 503) with Retry-After, in seconds or as a date: the next collects before that
    time leave the feed alone and say until when; after it, the feed is fetched again."""
    url = feed_server.add("/busy.xml", status=429, headers={"Retry-After": wait})
    config = _config(tmp_path, [{"name": "Busy", "url": url}])
    store = Store.open(config.database_url)
    (result,) = flows.collect_all(config, store, now=NOW).results  # NOW is 06:00 UTC
    assert result.status == FetchOutcome.FAILED
    assert "asked to wait until 2026-11-25 07:00 UTC" in (result.error or "")
    feed_server.requests.clear()
    (result,) = flows.collect_all(config, store, now=NOW + timedelta(minutes=30)).results
    assert feed_server.requests == [] and result.status == FetchOutcome.WAITING
    assert "not fetched before 2026-11-25 07:00 UTC (the server's Retry-After)" in (
        result.error or ""
    )
    later = (NOW + timedelta(minutes=40)).isoformat()
    said = CliRunner().invoke(
        cli, ["--config", str(config.path), "collect"], env={"NEWSLETTER_NOW": later}
    )
    assert said.exit_code == 0 and "wait   Busy (127.0.0.1:" in said.output
    feed_server.add("/busy.xml", FEED_XML)
    (result,) = flows.collect_all(config, store, now=NOW + timedelta(hours=1)).results
    assert (result.status, result.new) == (FetchOutcome.OK, 4)


def test_changed_story_is_updated_not_duplicated(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.add("/f.xml", FEED_XML)
    config = _config(tmp_path, [{"name": "F", "url": url}])
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    feed_server.add("/f.xml", FEED_XML.replace(b"Motorway charging network", b"Motorway network"))
    (result,) = flows.collect_all(config, store, now=NOW).results
    assert (result.new, result.updated) == (0, 1)
    titles = [s.title for s in store.stories.stored()]
    assert len(titles) == 4 and "Motorway network adds 600 ultra-rapid chargers" in titles


@pytest.mark.parametrize("keep_days", [1, 30])
def test_old_stories_are_pruned(feed_server: FeedServer, tmp_path: Path, keep_days: int) -> None:
    url = feed_server.add("/f.xml", FEED_XML)  # stories dated 23-24 Nov 2026
    path = write_config(
        tmp_path, {"feeds": [{"name": "F", "url": url}], "collect": {"keep_days": keep_days}}
    )
    config = load_config(path)
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    feed_server.add("/f.xml", b'<rss version="2.0"><channel><title>t</title></channel></rss>')
    later = NOW.replace(day=27)
    report = flows.collect_all(config, store, now=later)
    assert report.pruned == (4 if keep_days == 1 else 0)
    assert len(store.stories.stored()) == (0 if keep_days == 1 else 4)


BROKEN_WORKERS = """
import asyncio, sys
from datetime import datetime, UTC
from newsletter.ingest.collect import collect_feeds
from newsletter.models import FeedSource

async def run():
    feeds = [FeedSource(f"F{i}", f"f{i}.xml", sys.argv[1]) for i in range(4)]
    return [c async for c in collect_feeds(
        feeds, states={}, now=datetime.now(UTC), contact_url="x", parse_workers=2)]

if __name__ == "__main__":
    print(sorted(len(c.stories) for c in asyncio.run(run())))
"""

# Loaded by every interpreter the test starts: in multiprocessing's helper processes (started
# as `python -c ...`), each process forked from them (a parse worker) dies as it starts.
DYING_FORKS = """
import os, sys
if sys.argv == ["-c"]:
    os.register_at_fork(after_in_child=lambda: os._exit(3))
"""


def test_parsing_goes_on_in_process_when_the_workers_die(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "broken_workers.py"
    script.write_text(BROKEN_WORKERS, encoding="utf-8")
    feed = ROOT / "examples/demo/feeds/charge-lane.xml"
    (tmp_path / "sitecustomize.py").write_text(DYING_FORKS, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script), str(feed)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[4, 4, 4, 4]"
    assert "parse workers failed" in done.stderr


_WORKER_SCRIPT = """
import sys
import newsletter.cli.main  # what the `newsletter` command has loaded when it collects
from newsletter import runtime
from newsletter.ingest import collect, parse

def modules(light):
    pool = parse.parse_pool(2)
    try:
        if light:
            with runtime.light_workers():
                names = pool.submit(eval, "sorted(__import__('sys').modules)").result()
        else:
            names = pool.submit(eval, "sorted(__import__('sys').modules)").result()
    finally:
        pool.shutdown()
    return names

if __name__ == "__main__":
    light = modules(True)
    parsing = "newsletter.ingest.parse" in light
    print("light", "newsletter.cli" in light, parsing, "sqlalchemy" in light)
    print("plain", "newsletter.cli" in modules(False))
"""


@pytest.mark.slow
def test_parse_workers_start_without_the_cli(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(_WORKER_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0] == "light False True False"  # the parser, and none of the CLI's load
    assert lines[1] == "plain True"  # without the guard a worker imports the whole CLI


def test_a_sample_feed_is_dated_anew_at_each_collect(tmp_path: Path) -> None:
    feed = tmp_path / "charge-lane.xml"
    feed.write_bytes(FEED_XML)
    entries = [{"name": "Charge Lane", "url": str(feed), "sector": "evs-battery", "sample": True}]
    config = load_config(write_config(tmp_path, {"feeds": entries}))
    store = Store.open(config.database_url)
    later = NOW + timedelta(days=9)  # the file's dates are fixed; the demo is run days later
    try:
        for when in (NOW, later):
            flows.collect_all(config, store, now=when)
            stored = sorted(store.stories.stored(), key=lambda s: s.published)
            assert stored[-1].published == when  # the newest, at the collect
        first = stored[0].published
        assert later - first == timedelta(hours=17, minutes=50)  # spacing kept, as in the file
        built = build(config, store, now=later)
        assert built.edition is not None and built.edition.sections
    finally:
        store.close()


def test_the_parse_judges_each_story_language_in_the_workers(feed_server: FeedServer) -> None:
    # the language is judged where the feed is parsed (a worker process, on a core the
    # collection's network waits leave idle), and comes back with the stories
    items = {
        "en": "Battery maker doubles output at its new plant as electric car orders climb",
        "fr": "Le fabricant de batteries double sa production dans sa nouvelle usine du nord",
    }
    entries = "".join(
        f"<item><title>{title}</title><link>https://n.example.com/{lang}</link>"
        f"<guid>{lang}</guid><pubDate>Wed, 25 Nov 2026 05:00:00 GMT</pubDate></item>"
        for lang, title in items.items()
    )
    channel = f"<channel><title>T</title>{entries}</channel>"
    body = f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'
    urls = [feed_server.add(f"/{n}.xml", body) for n in range(3)]

    async def run() -> list[Collected]:
        feeds = [source(url, f"F{n}") for n, url in enumerate(urls)]
        return [
            c
            async for c in collect_feeds(
                feeds, states={}, now=NOW, contact_url="x", limits=QUICK, parse_workers=2
            )
        ]

    for collected in asyncio.run(run()):
        assert [s.title for s in collected.stories] == list(items.values())
        assert collected.languages == ("en", "fr")
