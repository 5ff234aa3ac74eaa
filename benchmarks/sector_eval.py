"""Score the sector rules on a labelled file, and time classifying 10,000 stories, through the
real command (`newsletter rules check`, a subprocess).

    python benchmarks/sector_eval.py LABELLED.jsonl [--config config.yaml] [--model]

With --model the stored sector model gives its second opinion (`rules check --model`); the
config's database must hold one (`newsletter rules train`).

Prints the command's report for LABELLED.jsonl, then the wall time of `rules check` on 10,000
stories (the labelled ones repeated) and of the same command on a file of one story, whose
difference is the classification itself (start-up, reading and scoring excluded).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(config: Path, labelled: Path, model: bool = False) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "newsletter"),
            "--config",
            str(config),
            "rules",
            "check",
            str(labelled),
            *(["--model"] if model else []),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labelled", type=Path)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--model", action="store_true", help="add the sector model's opinion")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    _, report = run(args.config, args.labelled, args.model)
    print(report)
    lines = [line for line in args.labelled.read_text(encoding="utf-8").splitlines() if line]
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "10k.jsonl"
        big.write_text("\n".join((lines * (10_000 // len(lines) + 1))[:10_000]) + "\n")
        one = Path(folder) / "1.jsonl"
        one.write_text(lines[0] + "\n")
        base = min(run(args.config, one, args.model)[0] for _ in range(3))
        full = min(run(args.config, big, args.model)[0] for _ in range(3))
    flag = " --model" if args.model else ""
    print(f"workload: `newsletter rules check{flag}` on 10,000 labelled stories vs 1 (best of 3)")
    print(
        f"10,000 stories: {full:.2f} s; 1 story: {base:.2f} s; classifying and scoring "
        f"10,000: {full - base:.2f} s"
    )


if __name__ == "__main__":
    main()
