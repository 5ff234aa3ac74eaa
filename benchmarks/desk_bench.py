"""Desk benchmark: how fast `newsletter serve` answers the editor's desk on a large store.

    python benchmarks/desk_bench.py [--feeds 300] [--readers 100000] [--editions 30]
                                    [--requests 200]

The store: N generated feeds collected by the real `newsletter collect`; M confirmed readers
over every sector combination; E sent editions, each made through the store as a send makes
it (the day's edition built from the stored stories by `flows.build`, saved, its ledger seeded
with a row per reader, claimed in batches of 1,000 and recorded sent under one message id a
batch), and the provider events a month of sends brings (through `EventStore.record_events`):
a delivery for 98.5 % of the readers, 1 % bounces, 0.05 % complaints, 0.2 % unsubscribes,
35 % opens and 6 % clicks on the edition's stories, the top ones most. The editions are dated
before today's storyline window, so today's edition is built from every stored story.

Then it starts `newsletter serve` as a subprocess, signs an editor in, and asks each desk page
R times in turn on one keep-alive connection (an editor clicking through): the first answer
(which computes what later ones keep) is printed apart from the p50 and p95 of the rest. It
also times a change on /desk/today (the form posted and the page it leads back to, which
builds the edition again). Prints the workload, the machine and the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402

EDITOR, PASSWORD = "desk@example.com", "benchmark password 1"
RATES = {"delivered": 0.985, "bounce": 0.01, "complaint": 0.0005, "unsubscribe": 0.002}
OPENS, CLICKS = 0.35, 0.06


def sent_editions(config_path: Path, count: int, readers: int, *, seed: int = 11) -> int:
    """``count`` editions sent through the store (see the module's docstring); returns how
    many provider events were recorded."""
    from newsletter.config import load_config
    from newsletter.flows.build import build
    from newsletter.models import EditionStatus, EventKind
    from newsletter.records import ProviderEvent
    from newsletter.store import Store

    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    now = datetime.fromisoformat(workload.NOW)
    built = build(config, store, now=now)
    assert built.edition is not None, built.reason
    rng = random.Random(seed)
    kinds = {k: EventKind(k) for k in RATES}
    recorded = 0
    for n in range(count):
        day = now - timedelta(days=7 + count - 1 - n)  # before today's window: it keeps its stories
        edition = dataclasses.replace(built.edition, edition_date=day.date())
        store.editions.save_edition(edition, status=EditionStatus.FROZEN, now=day)
        ref = store.editions.edition_ref(day.date())
        assert ref is not None
        store.ledger.seed_deliveries(ref.id)
        while claims := store.ledger.claim_batch(ref.id, claim="bench", size=1000, now=day):
            message = f"msg-{ref.id}-{claims[0].delivery_id}"
            store.ledger.record_deliveries(sent={c.delivery_id: message for c in claims}, now=day)
        store.editions.set_edition_status(ref.id, EditionStatus.SENT, now=day)
        urls = [s.url for section in edition.sections for s in section.stories][:40]
        events: list[ProviderEvent] = []
        for reader in range(1, readers + 1):
            base = {"at": day, "edition_id": ref.id, "subscriber_id": reader}
            for name, rate in RATES.items():
                if rng.random() < rate:
                    events.append(ProviderEvent(f"{name}-{ref.id}-{reader}", kinds[name], **base))  # type: ignore[arg-type]
            if rng.random() < OPENS:
                events.append(ProviderEvent(f"o-{ref.id}-{reader}", EventKind.OPEN, **base))  # type: ignore[arg-type]
                if rng.random() < CLICKS / OPENS:
                    url = urls[min(int(rng.expovariate(0.3)), len(urls) - 1)]
                    events.append(
                        ProviderEvent(f"c-{ref.id}-{reader}", EventKind.CLICK, url=url, **base)  # type: ignore[arg-type]
                    )
            if len(events) >= 20_000:
                recorded += store.events.record_events(events, now=day)
                events = []
        recorded += store.events.record_events(events, now=day)
    store.close()
    return recorded


def add_editor(config_path: Path) -> None:
    from newsletter.config import load_config
    from newsletter.models import EditorRole
    from newsletter.store import Store
    from newsletter.web.desk import accounts

    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    now = datetime.fromisoformat(workload.NOW)
    editor = accounts.add_editor(
        store, EDITOR, name="Bench", role=EditorRole.EDITOR, actor=None, now=now
    )
    accounts.set_password(store, editor, PASSWORD, PASSWORD, actor=None, now=now)
    store.close()


def signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    page = client.get("/desk/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text[:500]
    answer = client.post(
        "/desk/sign-in", data={"csrf": csrf[1], "email": EDITOR, "password": PASSWORD}
    )
    assert answer.status_code in (200, 303), answer.status_code
    return client


def timed(client: httpx.Client, path: str, times: int) -> tuple[float, list[float], int]:
    """(the first answer's seconds, the rest's, bytes of a page) for ``path``."""
    latencies = []
    size = 0
    for _ in range(times):
        started = time.perf_counter()
        answer = client.get(path)
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: {answer.status_code}\n{answer.text[:1000]}")
        size = len(answer.content)
    return latencies[0], latencies[1:], size


def timed_changes(client: httpx.Client, times: int) -> list[float]:
    """A subject changed on /desk/today and the page it leads back to, ``times`` times."""
    latencies = []
    for n in range(times):
        page = client.get("/desk/today").text
        form = re.search(r'<form[^>]*id="subject">(.*?)</form>', page, re.S)
        assert form, page[:1000]
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form[1]))
        started = time.perf_counter()
        answer = client.post(
            "/desk/today/change", data={**fields, "value": f"Subject {n}"}, follow_redirects=True
        )
        latencies.append(time.perf_counter() - started)
        assert answer.status_code == 200 and f"Subject {n}" in answer.text
    return latencies


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--editions", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        config = workload.collected_store(folder, args.feeds)
        workload.add_readers(f"sqlite:///{folder / 'newsletter.db'}", args.readers)
        events = sent_editions(config, args.editions, args.readers)
        add_editor(config)
        made = time.perf_counter() - started
        env = workload.environment()
        with workload.serving(config, env) as (base, server):
            client = signed_in(base)
            day = (datetime.fromisoformat(workload.NOW) - timedelta(days=7)).date()
            paths = [
                "/desk",
                "/desk/today",
                "/desk/editions",
                f"/desk/editions/{day}",
                "/desk/feeds",
                "/desk/readers",
                "/desk/readers?q=reader00512",
                "/desk/readers?q=00042",
                f"/desk/readers/{args.readers // 2}",
                f"/desk/readers/{args.readers // 2}/erase",
            ]
            results = {path: timed(client, path, args.requests) for path in paths}
            changes = timed_changes(client, 20)
            peak_mb = workload.high_water_kb(server.pid) / 1024
            client.close()
    print(
        f"workload: {args.feeds} generated feeds collected by `newsletter collect`, "
        f"{args.readers} confirmed readers, {args.editions} editions sent through the store "
        f"({args.editions * args.readers} ledger rows, {events} provider events); built in "
        f"{made:.0f} s; `newsletter serve` (one uvicorn process, SQLite) asked each desk page "
        f"{args.requests} times in turn by one signed-in editor on a keep-alive connection"
    )
    print(f"machine: {workload.machine()}")
    for path, (first, rest, size) in results.items():
        ordered = sorted(rest)
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
        print(
            f"{path}: first {ms(first)}, then p50 {ms(statistics.median(ordered))}, "
            f"p95 {ms(p95)} ({size / 1024:.0f} KB)"
        )
    ordered = sorted(changes)
    print(
        f"a change on /desk/today (POST, then the page built again): p50 "
        f"{ms(statistics.median(ordered))}, p95 {ms(ordered[int(len(ordered) * 0.95) - 1])}"
    )
    print(f"server peak memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
