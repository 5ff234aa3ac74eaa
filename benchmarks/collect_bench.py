"""Collection benchmark: N generated feeds on loopback with latency, collected by the command.

    python benchmarks/collect_bench.py [--feeds 500] [--hosts 50] [--latency 0.2]

A separate process serves --feeds generated feeds (20 stories each, some carried by several
outlets: benchmarks/workload.py) from 127.0.0.2 .. 127.0.0.(hosts+1), every answer delayed by
--latency seconds, honouring If-None-Match. The real command, `newsletter collect`, runs twice
as a subprocess into a temporary SQLite file (process start included, and the judging and
clustering of the new stories that collecting now does): the second run gets 304s. Then parsing
is timed in this process on the same bytes: bare `feedparser.parse` against our `parse_feed`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import feedparser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402
from newsletter.ingest import parse as parse_module  # noqa: E402
from newsletter.models import FeedSource  # noqa: E402


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
    args = parser.parse_args()

    server = workload.FeedServer(args.feeds, hosts=args.hosts, latency=args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = workload.write_config(Path(tmp), server.urls)
            command = workload.newsletter(config, "collect")
            runs = [workload.measure(command) for _ in range(2)]
    finally:
        server.close()
    items = workload.feed_items(min(args.feeds, 200))
    bodies = [workload.feed_body(n, feed) for n, feed in enumerate(items)]
    parse = time_parsing(bodies)
    own = parse["ours"] - parse["inner"]

    print(f"machine: {workload.machine()}")
    print(
        f"workload: {args.feeds} generated feeds x 20 stories "
        f"({sum(len(b) for b in bodies) // len(bodies) // 1024} KB each), {args.hosts} loopback "
        f"hosts, {args.latency * 1000:.0f} ms latency per request"
    )
    for name, run in zip(("first run (200s)", "second run (304s)"), runs, strict=True):
        last = (run.stdout.strip() or run.stderr.strip()).splitlines()
        print(
            f"{name}: {run.wall:.2f} s wall, peak {run.peak_mb:.0f} MB, exit {run.returncode}: "
            f"{last[-1] if last else ''}"
        )
    print(
        f"parse per feed (in this process): bare feedparser.parse {parse['bare'] * 1000:.2f} ms; "
        f"our parse_feed {parse['ours'] * 1000:.2f} ms, of which feedparser.parse "
        f"(its sanitiser off) {parse['inner'] * 1000:.2f} ms and our own work "
        f"{own * 1000:.2f} ms ({own / parse['bare']:.0%} of bare feedparser.parse)"
    )


if __name__ == "__main__":
    main()
