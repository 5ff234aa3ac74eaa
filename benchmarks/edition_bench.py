"""Edition benchmark: clustering and `preview --no-collect` on stores of generated feeds.

    python benchmarks/edition_bench.py [--feeds 500 2000]

For each size, a separate process serves that many generated feeds (20 stories each, about a
fifth of them one event carried by two to five outlets: benchmarks/workload.py), and the real
`newsletter -v collect` fills a temporary SQLite store. Collecting judges and clusters the new
stories; the command's own log gives the clustering time of all the stories (all of them new,
so every candidate pair is compared). Then `newsletter preview --no-collect` runs twice as a
subprocess, end to end (process start, config, reading the store, building, rendering,
writing): the time a publisher waits. Peak memory is each command's own VmHWM from /proc.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402

CLUSTERED = re.compile(r"clustered (\d+) stories \((\d+) of them new\) into (\d+) in ([\d.]+) s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, nargs="+", default=[500, 2000])
    args = parser.parse_args()
    print(f"machine: {workload.machine()}")
    results = []
    for feeds in args.feeds:
        server = workload.FeedServer(feeds, latency=0.0)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                config = workload.write_config(Path(tmp), server.urls)
                collect = workload.measure(
                    [*workload.newsletter(config, "collect")[:-1], "-v", "collect"]
                )
                found = CLUSTERED.search(collect.stderr)
                out = Path(tmp) / "preview"
                command = workload.newsletter(config, "preview", "--no-collect", "--out", str(out))
                previews = [workload.measure(command) for _ in range(2)]
        finally:
            server.close()
        if collect.returncode or found is None:
            raise SystemExit(f"collect failed:\n{collect.stderr[-3000:]}")
        stories, _, groups, seconds = found.groups()
        results.append((feeds, previews[-1].wall))
        print(
            f"{feeds} feeds: collect {collect.wall:.1f} s (peak {collect.peak_mb:.0f} MB); "
            f"clustering {int(stories):,} stories into {int(groups):,}: {float(seconds):.2f} s"
        )
        for n, run in enumerate(previews, start=1):
            print(
                f"  preview --no-collect, run {n}: {run.wall:.2f} s end to end, peak "
                f"{run.peak_mb:.0f} MB, exit {run.returncode}"
            )
    for (small, t_small), (big, t_big) in itertools.pairwise(results):
        print(
            f"{big / small:.0f}x the feeds: {t_big / t_small:.2f}x the preview time "
            "(linear would be the same factor)"
        )


if __name__ == "__main__":
    main()
