"""Send benchmark: N confirmed readers over many sector combinations, through SendGrid's API.

    python benchmarks/send_bench.py [--readers 100000]

A separate process serves a local stand-in for SendGrid's /v3/mail/send that enforces the
documented limits (tests/sendgrid_server.py). The readers are written straight into a temporary
SQLite file, each with one of 50 sector combinations; then `newsletter send` runs in its own
process, through the real `sendgrid` library. Prints the wall time, the requests the server
accepted, the readers it saw, and the sending process's peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.store import Store  # noqa: E402
from newsletter.store.tables import subscribers  # noqa: E402
from tests.sendgrid_server import SendgridServer  # noqa: E402

KEY = "SG.benchmark-key"
NOW = "2026-11-25T06:00:00+00:00"


def serve(ready: multiprocessing.Queue, stats: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    server = SendgridServer(api_key=KEY, keep_bodies=False)
    ready.put(server.url)
    import threading

    def report() -> None:
        while True:
            time.sleep(0.2)
            stats.put(
                (
                    server.requests,
                    len(server.recipients),
                    max(server.recipients.values(), default=0),
                )
            )

    threading.Thread(target=report, daemon=True).start()
    server.httpd.serve_forever(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    args = parser.parse_args()

    ctx = multiprocessing.get_context("fork")
    ready: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    stats: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    server = ctx.Process(target=serve, args=(ready, stats), daemon=True)
    server.start()
    url = ready.get(timeout=30)

    rng = random.Random(3)
    slugs = [
        "evs-battery",
        "oil-gas",
        "rare-earths-commodities",
        "mining-metals",
        "esg-renewables",
        "ai-semiconductors",
        "aerospace-defense",
        "sanctions-regulation",
        "business-politics",
    ]
    combos = [[]] + [list(c) for n in (1, 2, 3) for c in itertools.combinations(slugs, n)]
    rng.shuffle(combos)
    combos = combos[:50]

    with tempfile.TemporaryDirectory() as tmp:
        feeds = [
            {"name": p.stem, "url": str(p)}
            for p in sorted((ROOT / "examples/demo/feeds").glob("*.xml"))
        ]
        config = Path(tmp) / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "sectors_file": str(ROOT / "config.yaml"),
                    "feeds": feeds,
                    "digest": {"max_age_hours": 1000000},
                    "delivery": {"backend": "sendgrid", "sendgrid": {"api_host": url}},
                }
            ),
            encoding="utf-8",
        )
        store = Store.open(f"sqlite:///{tmp}/newsletter.db")
        now = datetime.fromisoformat(NOW)
        rows = [
            {
                "email": f"reader{n:06d}@example.com",
                "name": f"Reader {n}",
                "sectors": json.dumps(combos[n % len(combos)]),
                "status": "confirmed",
                "token": secrets.token_urlsafe(24),
                "created_at": now,
                "updated_at": now,
            }
            for n in range(args.readers)
        ]
        with store.engine.begin() as conn:
            conn.execute(insert(subscribers), rows)
        store.close()
        del rows
        env = {**os.environ, "SENDGRID_API_KEY": KEY, "NEWSLETTER_NOW": NOW}
        subprocess.run(
            [sys.executable, "-m", "newsletter", "--config", str(config), "collect"],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        started = time.perf_counter()
        sender = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "--config", str(config), "send", "--no-collect"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        peak_kb = 0
        while sender.poll() is None:  # the sender's own high-water mark, not this script's
            peak_kb = max(peak_kb, _high_water_kb(sender.pid))
            time.sleep(0.05)
        out, err = sender.communicate()
        wall = time.perf_counter() - started
        done = subprocess.CompletedProcess(sender.args, sender.returncode, out, err)
    time.sleep(0.5)
    last = (0, 0, 0)
    while not stats.empty():
        last = stats.get()
    server.kill()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"workload: {args.readers:,} confirmed readers over {len(combos)} sector combinations; "
        "SendGrid stand-in on 127.0.0.1 enforcing its limits"
    )
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:])
    print(f"send wall time: {wall:.1f} s (including process start)")
    print(
        f"server: {last[0]} requests accepted or refused, {last[1]:,} distinct readers, "
        f"at most {last[2]} copies to one reader"
    )
    print(f"peak memory of the sending process: {peak_kb / 1024:.0f} MB")


def _high_water_kb(pid: int) -> int:
    """VmHWM (peak resident set) of one process, from /proc; 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    main()
