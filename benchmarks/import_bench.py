"""Import benchmark: a CSV of N readers with some bad lines, imported twice, then exported.

    python benchmarks/import_bench.py [--rows 1000000]

Writes a CSV (UTF-8 with BOM) of readers with names and sectors (every combination the sign-up
form can produce), one line in 500 broken (a bad address, an unknown sector, angle brackets in a
name), then runs the real command as a subprocess against a temporary SQLite file:
`newsletter subscribers import` twice (the second must change nothing) and `newsletter
subscribers export`. Prints each wall time (process start included), the rows per second and
the command's own peak memory (VmHWM sampled from /proc).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402


def write_csv(path: Path, rows: int) -> int:
    combos = [";".join(c) for c in workload.combinations()]
    rng = random.Random(5)
    bad = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "sectors"])
        for n in range(rows):
            email, name, sectors = f"reader{n:07d}@example.com", f"Reader {n}", rng.choice(combos)
            if n % 500 == 7:
                bad += 1
                email, sectors, name = [
                    ("not-an-address", sectors, name),
                    (email, "crypto", name),
                    (email, sectors, "Ann <ann@example.com>"),  # a line break is only cleaned
                ][n % 3]
            writer.writerow([email, name, sectors])
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = workload.write_config(Path(tmp), [])
        path = Path(tmp) / "readers.csv"
        bad = write_csv(path, args.rows)
        runs = [
            workload.measure(workload.newsletter(config, "subscribers", "import", str(path)))
            for _ in range(2)
        ]
        export = workload.measure(workload.newsletter(config, "subscribers", "export"))
        size = path.stat().st_size
    print(f"machine: {workload.machine()}")
    print(
        f"workload: {args.rows:,} rows ({size / 1e6:.0f} MB), {bad} of them bad (address, sector "
        "or name), sectors over all 511 combinations"
    )
    for name, run in zip(("first import", "second import"), runs, strict=True):
        last = (run.stdout.strip() or run.stderr.strip()).splitlines()
        print(
            f"{name}: {run.wall:.1f} s ({args.rows / run.wall:,.0f} rows/s), peak "
            f"{run.peak_mb:.0f} MB, exit {run.returncode}: {last[-1] if last else ''}"
        )
    lines = export.stdout.count("\n")
    print(
        f"export: {export.wall:.1f} s ({max(lines - 1, 0) / export.wall:,.0f} rows/s), peak "
        f"{export.peak_mb:.0f} MB, {lines - 1:,} rows written, exit {export.returncode}"
    )


if __name__ == "__main__":
    main()
