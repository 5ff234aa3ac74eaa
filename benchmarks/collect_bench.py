"""Collection benchmark: N generated feeds on loopback with latency, collected by the command.

    python benchmarks/collect_bench.py [--feeds 500] [--hosts 10] [--latency 0.2]
        [--vocabulary 80] [--rss2email]

A separate process serves --feeds generated feeds (20 stories each, some carried by several
outlets: benchmarks/workload.py) from 127.0.0.2 .. 127.0.0.(hosts+1), every answer delayed by
--latency seconds, honouring If-None-Match. The stories' article links are on hosts of their
own (newsN.example.com), which do not resolve on a machine without outside DNS, and a tenth of
the stories have no teaser in their feed, so their page is wanted: the teasers' worst case.
The config has the bundled one's collect settings (article teasers on). The real commands run
as subprocesses into a temporary SQLite file made first (`newsletter db upgrade`, untimed, as
rss2email's `r2e new` and `opmlimport` are), process start included: `newsletter collect`
twice (the second gets 304s), then `newsletter collect --teasers` (the article pages, as
`newsletter run` reads them behind a collection) and `newsletter preview --no-collect` (the
edition built from what was collected). With --vocabulary N every headline and teaser is drawn
from N words (no names): the clustering's worst case. With --rss2email, rss2email 3.14 is
installed in a scratch venv and run on the same feeds (`r2e run --no-send`, twice), between the
same runs of ours. Then parsing is timed in this process on the same bytes: bare
`feedparser.parse` against our `parse_feed`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
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


THIN = 0.1  # stories whose feed gives no teaser, so that their article page is wanted


def rss2email(folder: Path, urls: list[str]) -> list[str]:
    """rss2email 3.14 in a scratch venv, with these feeds: the command that runs it."""
    venv = folder / "r2e-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "rss2email==3.14"]
    subprocess.run(pip, check=True, capture_output=True)
    outlines = "".join(
        f'<outline type="rss" text="feed{n}" xmlUrl="{url}"/>' for n, url in enumerate(urls)
    )
    opml = folder / "feeds.opml"
    opml.write_text(f'<?xml version="1.0"?><opml version="1.0"><body>{outlines}</body></opml>')
    r2e = [str(venv / "bin" / "r2e"), "-c", str(folder / "r2e.cfg"), "-d", str(folder / "r2e.json")]
    subprocess.run([*r2e, "new", "reader@example.com"], check=True, capture_output=True)
    subprocess.run([*r2e, "opmlimport", str(opml)], check=True, capture_output=True)
    return [*r2e, "run", "--no-send"]


def _last(run: workload.Measured) -> str:
    lines = [x for x in (run.stdout.strip() or run.stderr.strip()).splitlines() if x.strip()]
    return lines[-1][:160] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--vocabulary", type=int, default=0, help="words; 0: realistic")
    parser.add_argument("--rss2email", action="store_true", help="also time rss2email 3.14")
    args = parser.parse_args()

    server = workload.FeedServer(
        args.feeds,
        hosts=args.hosts,
        latency=args.latency,
        vocabulary=args.vocabulary,
        thin=THIN,
    )
    ours: dict[str, workload.Measured] = {}
    theirs: dict[str, workload.Measured] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            teasers = {"teasers": {"enabled": True, "timeout_seconds": 10, "budget_seconds": 60}}
            config = workload.write_config(folder, server.urls, collect=teasers)
            r2e = rss2email(folder, server.urls) if args.rss2email else None
            env = workload.environment()
            # the database made first, untimed, as rss2email's is (`r2e new`, `opmlimport`)
            workload.measure(workload.newsletter(config, "db", "upgrade"), env)
            ours["first collect"] = workload.measure(workload.newsletter(config, "collect"), env)
            if r2e:
                theirs["first run"] = workload.measure(r2e)
            ours["second collect (304s)"] = workload.measure(
                workload.newsletter(config, "collect"), env
            )
            if r2e:
                theirs["second run (304s)"] = workload.measure(r2e)
            ours["collect --teasers"] = workload.measure(
                workload.newsletter(config, "collect", "--teasers"), env
            )
            ours["preview --no-collect"] = workload.measure(
                workload.newsletter(config, "preview", "--no-collect", "--out", str(folder / "p")),
                env,
            )
    finally:
        server.close()
    items = workload.feed_items(min(args.feeds, 200), vocabulary=args.vocabulary)
    bodies = [workload.feed_body(n, feed) for n, feed in enumerate(items)]
    parse = time_parsing(bodies)
    own = parse["ours"] - parse["inner"]

    print(f"machine: {workload.machine()}")
    vocabulary = f"headlines from {args.vocabulary} words" if args.vocabulary else "realistic"
    print(
        f"workload: {args.feeds} generated feeds x 20 stories ({vocabulary}; "
        f"{sum(len(b) for b in bodies) // len(bodies) // 1024} KB each), {args.hosts} loopback "
        f"hosts, {args.latency * 1000:.0f} ms latency per request; article links on hosts that "
        f"do not resolve; {THIN:.0%} of the stories without a teaser in their feed; article "
        f"teasers on"
    )
    for name, run in ours.items():
        print(
            f"newsletter {name}: {run.wall:.2f} s wall, peak {run.peak_mb:.0f} MB, exit "
            f"{run.returncode}: {_last(run)}"
        )
    for name, run in theirs.items():
        mine = ours["first collect" if name == "first run" else "second collect (304s)"]
        print(
            f"rss2email 3.14 {name}: {run.wall:.2f} s wall, peak {run.peak_mb:.0f} MB, exit "
            f"{run.returncode}; ours {run.wall / mine.wall:.1f}x faster"
        )
    print(
        f"parse per feed (in this process): bare feedparser.parse {parse['bare'] * 1000:.2f} ms; "
        f"our parse_feed {parse['ours'] * 1000:.2f} ms, of which feedparser.parse "
        f"(its sanitiser off) {parse['inner'] * 1000:.2f} ms and our own work "
        f"{own * 1000:.2f} ms ({own / parse['bare']:.0%} of bare feedparser.parse)"
    )


if __name__ == "__main__":
    main()
