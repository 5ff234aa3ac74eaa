"""Rendering benchmark: every sector combination the sign-up form can produce, rendered once.

    python benchmarks/render_bench.py [--readers 100000] [--feeds 500]

The store is realistic: --feeds generated feeds collected by the real `newsletter collect`
(benchmarks/workload.py), then N confirmed readers over all 511 sector combinations. The real
command `newsletter -v send --dry-run --no-collect` (outbox backend: nothing is written) builds
the edition and renders one variant per combination a reader has (Jinja2 -> MJML -> MRML ->
minified HTML, and the text part); its log says how many variants, how long they took and the
largest HTML. The wall time and the command's own peak memory (VmHWM) are measured too.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402

RENDERED = re.compile(r"rendered (\d+) variants in ([\d.]+) s \(largest HTML ([\d.]+) KB\)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--feeds", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = workload.collected_store(Path(tmp), args.feeds)
        combos = workload.add_readers(f"sqlite:///{tmp}/newsletter.db", args.readers)
        command = workload.newsletter(config, "send", "--dry-run", "--no-collect")
        run = workload.measure([*command[:3], "-v", *command[3:]])
    found = RENDERED.search(run.stderr)
    if run.returncode or found is None:
        raise SystemExit(f"the dry run failed:\n{run.stderr[-3000:]}")
    variants, seconds, largest = found.groups()
    print(f"machine: {workload.machine()}")
    print(
        f"workload: {args.readers:,} readers over {combos} sector combinations; an edition "
        f"from {args.feeds} generated feeds ({args.feeds * 20:,} stories)"
    )
    print(
        f"rendered {int(variants)} variants in {float(seconds):.2f} s "
        f"({float(seconds) / int(variants) * 1000:.1f} ms each); largest HTML {largest} KB"
    )
    print(f"`newsletter send --dry-run`: {run.wall:.1f} s end to end, peak {run.peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
