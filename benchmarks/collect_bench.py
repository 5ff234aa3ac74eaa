"""Collection benchmark: N feeds served on loopback with artificial latency, collected twice.

    python benchmarks/collect_bench.py [--feeds 500] [--hosts 50] [--latency 0.2] [--items 20]

A separate process serves the feeds from 127.0.0.2 .. 127.0.0.(hosts+1), one port each, every
answer delayed by --latency seconds; it honours If-None-Match. The collector runs the real
pipeline (`pipeline.collect_all`) with the default limits of config.yaml into a temporary SQLite
file, twice: the second run gets 304s. Then it times parsing on the same bytes: bare
`feedparser.parse` against our `parse_feed`, and the share of ours spent outside feedparser.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter import parse as parse_module  # noqa: E402
from newsletter import pipeline  # noqa: E402
from newsletter.config import load_config  # noqa: E402
from newsletter.models import FeedSource  # noqa: E402
from newsletter.store import Store  # noqa: E402

WORDS = [
    "crude",
    "output",
    "refinery",
    "copper",
    "lithium",
    "battery",
    "grid",
    "solar",
    "turbine",
    "chip",
    "foundry",
    "wafer",
    "tariff",
    "sanctions",
    "regulator",
    "market",
    "shares",
    "profit",
    "quarter",
    "pipeline",
    "tanker",
    "cargo",
    "demand",
    "supply",
    "price",
    "plant",
    "capacity",
    "contract",
    "project",
    "investors",
    "forecast",
    "outlook",
]


def feed_body(n: int, items: int) -> bytes:
    """An RSS 2.0 feed of ``items`` entries with HTML descriptions, unique to feed ``n``."""
    out = []
    for i in range(items):
        words = " ".join(WORDS[(n * 7 + i * 3 + k) % len(WORDS)] for k in range(60))
        out.append(
            f"<item><title>Feed {n} story {i}: {WORDS[(n + i) % len(WORDS)]} "
            f"{WORDS[(n * 3 + i) % len(WORDS)]} update</title>"
            f"<link>https://host{n % 50}.example.com/{n}/{i}?utm_source=rss</link>"
            f'<guid isPermaLink="false">feed-{n}-item-{i}</guid>'
            f"<pubDate>Tue, 24 Nov 2026 {i % 24:02d}:{n % 60:02d}:00 +0000</pubDate>"
            f"<description><![CDATA[<p>{words.capitalize()}.</p><p><b>More</b> &amp; "
            f'<a href="https://x.example.com/{i}">details</a>.</p>'
            f'<img src="https://t.example.com/{n}/{i}.gif" width="1" height="1">]]></description>'
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Feed {n}</title><link>https://host{n}.example.com/</link>"
        f"<description>Benchmark feed {n}</description>{''.join(out)}</channel></rss>"
    ).encode()


def serve(hosts: int, feeds: int, items: int, latency: float, ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    bodies = [feed_body(n, items) for n in range(feeds)]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                n = int(lines[0].split()[1].rsplit("/", 1)[-1].removesuffix(".xml"))
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                await asyncio.sleep(latency)
                etag = f'"feed-{n}-v1"'
                if headers.get("If-None-Match") == etag:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n".encode())
                else:
                    body = bodies[n]
                    writer.write(
                        (
                            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8"
                            f"\r\nETag: {etag}\r\nContent-Length: {len(body)}\r\n\r\n"
                        ).encode()
                        + body
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        ports = []
        for h in range(hosts):
            server = await asyncio.start_server(handle, f"127.0.0.{h + 2}", 0, backlog=1024)
            ports.append(server.sockets[0].getsockname()[1])
        ready.put(ports)
        await asyncio.sleep(3600)

    asyncio.run(main())


def time_parsing(bodies: list[bytes], rounds: int = 3) -> dict[str, float]:
    """Seconds per feed: bare feedparser, ours in all, and the feedparser call inside ours."""
    now = datetime.now(UTC)
    source = FeedSource(name="b", url="https://b.example.com/feed", location="x")
    inner: list[float] = []
    real_parse = feedparser.parse

    def timed_parse(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return real_parse(*args, **kwargs)
        finally:
            inner.append(time.perf_counter() - started)

    bare_runs, ours_runs, inner_runs = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for body in bodies:
            feedparser.parse(body)
        bare_runs.append((time.perf_counter() - started) / len(bodies))

        inner.clear()
        parse_module.feedparser.parse = timed_parse  # type: ignore[assignment]
        try:
            started = time.perf_counter()
            for body in bodies:
                parse_module.parse_feed(body, source, headers={}, now=now)
            ours_runs.append((time.perf_counter() - started) / len(bodies))
        finally:
            parse_module.feedparser.parse = real_parse  # type: ignore[assignment]
        inner_runs.append(sum(inner) / len(bodies))
    return {
        "bare": statistics.median(bare_runs),
        "ours": statistics.median(ours_runs),
        "inner": statistics.median(inner_runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()

    ctx = multiprocessing.get_context("fork")
    ready: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    server = ctx.Process(
        target=serve, args=(args.hosts, args.feeds, args.items, args.latency, ready), daemon=True
    )
    server.start()
    ports = ready.get(timeout=60)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            feeds = [
                {
                    "name": f"Feed {n}",
                    "url": f"http://127.0.0.{n % args.hosts + 2}:{ports[n % args.hosts]}/{n}.xml",
                }
                for n in range(args.feeds)
            ]
            path = Path(tmp) / "config.yaml"
            path.write_text(
                yaml.safe_dump({"sectors_file": str(ROOT / "config.yaml"), "feeds": feeds}),
                encoding="utf-8",
            )
            config = load_config(path)
            limits = pipeline.fetch_limits(config)
            store = Store.open(config.database_url)
            now = datetime.now(UTC)
            first = pipeline.collect_all(config, store, now=now)
            second = pipeline.collect_all(config, store, now=now)
            stored = store.story_count()
            store.close()
    finally:
        server.kill()

    def summary(report: pipeline.CollectReport) -> str:
        counts: dict[str, int] = {}
        for r in report.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        new = sum(r.new for r in report.results)
        return f"{report.seconds:6.2f} s  {new:6d} new stories  {counts}"

    bodies = [feed_body(n, args.items) for n in range(min(args.feeds, 200))]
    parse = time_parsing(bodies)
    own = parse["ours"] - parse["inner"]

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"workload: {args.feeds} feeds x {args.items} items "
        f"({sum(len(b) for b in bodies) // len(bodies) // 1024} KB each), {args.hosts} loopback "
        f"hosts, {args.latency * 1000:.0f} ms latency per request"
    )
    print(
        f"limits: {limits.max_concurrency} at once, {limits.max_per_host} per host, "
        f"{limits.total_timeout:g} s per feed"
    )
    print(f"first run (200s):   {summary(first)}")
    print(f"second run (304s):  {summary(second)}")
    print(f"stories stored: {stored}")
    print(
        f"parse per feed: bare feedparser.parse {parse['bare'] * 1000:.2f} ms; "
        f"our parse_feed {parse['ours'] * 1000:.2f} ms, of which feedparser.parse "
        f"(its sanitiser off) {parse['inner'] * 1000:.2f} ms and our own work "
        f"{own * 1000:.2f} ms"
    )
    print(
        f"our own work: {own / parse['bare']:.0%} of bare feedparser.parse's time, "
        f"{own / parse['inner']:.0%} of the feedparser.parse call inside ours"
    )


if __name__ == "__main__":
    main()
