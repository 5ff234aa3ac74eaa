"""Import benchmark: a CSV of N readers with some bad lines, imported twice.

    python benchmarks/import_bench.py [--rows 100000]

Writes a CSV (UTF-8 with BOM) of readers with names and sectors, one line in 500 broken (a bad
address, an unknown sector, a line break in a name), then runs `newsletter subscribers import`
on it twice against a temporary SQLite file: the second run must change nothing. Prints both
wall times and the counts.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SECTORS = ["oil-gas", "evs-battery", "ai-semiconductors", "mining-metals", "esg-renewables"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({"sectors_file": str(ROOT / "config.yaml")}), "utf-8")
        path = Path(tmp) / "readers.csv"
        bad = 0
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "name", "sectors"])
            for n in range(args.rows):
                email, name = f"reader{n:06d}@example.com", f"Reader {n}"
                sectors = ";".join(SECTORS[: n % 4])
                if n % 500 == 7:
                    bad += 1
                    email, sectors, name = [
                        ("not-an-address", sectors, name),
                        (email, "crypto", name),
                        (email, sectors, "Line\nBreak"),
                    ][n % 3]
                writer.writerow([email, name, sectors])
        env = {**os.environ, "NEWSLETTER_NOW": "2026-11-25T06:00:00+00:00"}
        command = [
            sys.executable,
            "-m",
            "newsletter",
            "--config",
            str(config),
            "subscribers",
            "import",
            str(path),
        ]
        times, lasts = [], []
        for _ in range(2):
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
            times.append(time.perf_counter() - started)
            lasts.append(done.stdout.strip().splitlines()[-1] if done.stdout else done.stderr)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"workload: {args.rows:,} rows, {bad} of them bad (address, sector or name)")
    print(f"first import: {times[0]:.1f} s: {lasts[0]}")
    print(f"second import: {times[1]:.1f} s: {lasts[1]}")


if __name__ == "__main__":
    main()
