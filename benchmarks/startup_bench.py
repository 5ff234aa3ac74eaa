"""Start-up benchmark: how long the light commands take, whole, on an existing store.

    python benchmarks/startup_bench.py [--runs 5] [--feeds 100]

A store of --feeds generated feeds collected by the real `newsletter collect` (so the
schema is migrated and there are stories to list), then each command below runs --runs times
as a subprocess: its wall time (process start, imports, the store opened, the work, the
exit) and its own peak memory (VmHWM from /proc). What a command imports is tested in
tests/test_startup.py; this script says what that costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402

COMMANDS = [["--version"], ["status"], ["stories", "--since", "24"], ["subscribers", "list"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--feeds", type=int, default=100)
    args = parser.parse_args()
    results: dict[str, list[workload.Measured]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = workload.collected_store(Path(tmp), args.feeds)
        env = workload.environment()
        for command in COMMANDS:
            for _ in range(2):  # unmeasured: the file cache warm, as for a command run often
                workload.measure(workload.newsletter(config, *command), env)
            runs = [
                workload.measure(workload.newsletter(config, *command), env)
                for _ in range(args.runs)
            ]
            results[" ".join(command)] = runs
    print(f"machine: {workload.machine()}")
    print(
        f"workload: a store of {args.feeds} generated feeds ({args.feeds * 20:,} stories), each "
        f"command run {args.runs} times after two unmeasured runs (a warm file cache)"
    )
    for name, runs in results.items():
        walls = sorted(r.wall for r in runs)
        failed = [r for r in runs if r.returncode]
        print(
            f"newsletter {name}: wall min {walls[0]:.2f} s, median {statistics.median(walls):.2f} "
            f"s, max {walls[-1]:.2f} s; peak {max(r.peak_mb for r in runs):.0f} MB"
            + (f"; {len(failed)} runs failed: {failed[0].stderr[-300:]}" if failed else "")
        )


if __name__ == "__main__":
    main()
