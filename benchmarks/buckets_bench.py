"""Local-hour delivery benchmark: one day's buckets, each sent by `newsletter send --due`.

    python benchmarks/buckets_bench.py [--readers 100000] [--feeds 300] [--delay 0.2]

The store is realistic: --feeds generated feeds (20 stories each) collected by the real
`newsletter collect`, then N confirmed readers spread over 24 time zones (Asia/Kolkata's half
hour and Asia/Kathmandu's quarter among them) and the 4 delivery hours the config offers
(06:00 to 09:00 local), over every sector combination; 10 % of them weekly (on a random
weekday), 20 % following a watchlist of 3 company names drawn from the feeds' own. The local
SendGrid stand-in of the tests (tests/sendgrid_server.py) answers each request after --delay
seconds, in a process of its own.

For each moment of the day at which some bucket is due, in order, `newsletter send --due
--no-collect` runs as a subprocess with NEWSLETTER_NOW set to that moment (the scheduler's
pass, as `newsletter run` makes it): its wall time (process start included) and its own peak
memory (VmHWM from /proc) are measured, and the server counts the readers it saw. The first
pass also builds and freezes the day's edition.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402
from benchmarks.send_bench import KEY, start_server  # noqa: E402

ZONES = [
    "Pacific/Auckland", "Australia/Sydney", "Asia/Tokyo", "Asia/Shanghai", "Asia/Singapore",
    "Asia/Bangkok", "Asia/Kathmandu", "Asia/Kolkata", "Asia/Karachi", "Asia/Dubai",
    "Europe/Moscow", "Africa/Nairobi", "Europe/Berlin", "Europe/London", "Atlantic/Azores",
    "America/Sao_Paulo", "America/Halifax", "America/New_York", "America/Chicago",
    "America/Denver", "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu",
    "Africa/Lagos",
]  # fmt: skip
HOURS = [6, 7, 8, 9]
DAY = date(2026, 11, 25)  # the edition's date (a Wednesday)


def add_readers(database: str, count: int, companies: list[str], seed: int = 5) -> None:
    """``count`` confirmed readers over the zones, hours and sector combinations."""
    from sqlalchemy import insert

    from newsletter.models import Frequency, SubscriberStatus
    from newsletter.store import Store
    from newsletter.store.tables import subscribers

    rng = random.Random(seed)
    combos = [json.dumps(c) for c in workload.combinations()]
    now = datetime.fromisoformat(workload.NOW)
    store = Store.open(database)
    for start in range(0, count, 50_000):
        rows = []
        for n in range(start, min(count, start + 50_000)):
            weekly = rng.random() < 0.10
            watching = rng.sample(companies, 3) if rng.random() < 0.20 else []
            rows.append(
                {
                    "email": f"reader{n:07d}@example.com",
                    "name": f"Reader {n}" if n % 3 else "",
                    "sectors": combos[rng.randrange(len(combos))],
                    "status": SubscriberStatus.CONFIRMED,
                    "token": secrets.token_urlsafe(24),
                    "created_at": now,
                    "updated_at": now,
                    "timezone": ZONES[n % len(ZONES)],
                    "delivery_hour": HOURS[rng.randrange(4)],
                    "frequency": Frequency.WEEKLY if weekly else Frequency.DAILY,
                    "weekday": rng.randrange(7) if weekly else None,
                    "watchlist": json.dumps(watching),
                }
            )
        with store.engine.begin() as conn:
            conn.execute(insert(subscribers), rows)
    store.close()


def due_moments(database: str, config: Path, day: date) -> tuple[list[datetime], int]:
    """Each moment some bucket of ``day``'s editions is due, and how many readers get one."""
    from newsletter.config import load_config
    from newsletter.models import EditionKind
    from newsletter.readers import timing
    from newsletter.store import Store

    schedule = load_config(config).file.schedule
    store = Store.open(database)
    slots = store.ledger.reader_slots()
    store.close()
    dues = [d for kind in EditionKind for d in timing.plan(slots, day, kind, schedule)]
    return sorted({d.at for d in dues}), sum(d.readers for d in dues)


def _sent(stdout: str) -> int:
    """Readers a `send --due` run says it sent."""
    return sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) readers? sent", stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per request")
    args = parser.parse_args()

    server, url, stats = start_server(args.delay)
    runs: list[tuple[datetime, Any, int]] = []
    last = (0, 0, 0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            delivery = {"backend": "sendgrid", "sendgrid": {"api_host": url}, "preflight": False}
            schedule = {"send_at": "07:00", "timezone": "UTC", "delivery_hours": HOURS}
            config = workload.collected_store(
                Path(tmp), args.feeds, delivery=delivery, schedule=schedule
            )
            database = f"sqlite:///{tmp}/newsletter.db"
            companies = workload.company_names(max(500, args.feeds * 3), random.Random(7))
            add_readers(database, args.readers, companies[:60])
            # the day before first, unmeasured: in a steady state its editions are frozen and
            # its last buckets go out among the day's first ones
            warm, _ = due_moments(database, config, DAY - timedelta(days=1))
            moments, expected = due_moments(database, config, DAY)
            command = workload.newsletter(config, "send", "--due", "--no-collect")
            for at in [m for m in warm if m < moments[0]] + moments:
                env = workload.environment(
                    SENDGRID_API_KEY=KEY, NEWSLETTER_NOW=(at + timedelta(seconds=5)).isoformat()
                )
                run = workload.measure(command, env)
                if at >= moments[0]:
                    runs.append((at, run, _sent(run.stdout)))
                if run.returncode:
                    print(run.stderr[-3000:])
                    break
            time.sleep(0.5)
            while not stats.empty():
                last = stats.get()
    finally:
        server.kill()
    print(f"machine: {workload.machine()}")
    print(
        f"workload: {args.readers:,} confirmed readers in {len(ZONES)} time zones x "
        f"{len(HOURS)} delivery hours, 10 % weekly, 20 % with a watchlist of 3 names; an "
        f"edition from {args.feeds} generated feeds ({args.feeds * 20:,} stories); SendGrid "
        f"stand-in answering after {args.delay * 1000:.0f} ms; the {len(runs)} passes at which "
        f"a bucket of {DAY}'s editions is due (the day before's passes run first, unmeasured)"
    )
    for at, run, sent in runs:
        editions = re.findall(r"edition of (\d{4}-\d\d-\d\d): ([\d,]+)", run.stdout)
        what = ", ".join(f"{n} of {d}" for d, n in editions) or "none"
        print(
            f"  {at:%Y-%m-%d %H:%M} UTC: {sent:6,} readers in {run.wall:5.1f} s, "
            f"peak {run.peak_mb:4.0f} MB ({what})"
        )
    walls = [run.wall for _, run, _ in runs]
    print(
        f"per pass: max {max(walls):.1f} s, median {statistics.median(walls):.1f} s; peak "
        f"memory max {max(run.peak_mb for _, run, _ in runs):.0f} MB"
    )
    print(
        f"sent in these passes: {sum(n for _, _, n in runs):,} ({expected:,} readers get "
        f"{DAY}'s editions); at most {last[2]} copies to one address over the two days"
    )


if __name__ == "__main__":
    main()
