"""The realistic workload the benchmarks share: generated feeds, a collected store, readers.

- ``feed_bodies``: N RSS feeds of 20 stories each, written from generated company names, places
  and each sector's vocabulary; about a fifth of the stories are one event carried by two to
  five outlets (the same link, or the headline reworded slightly).
- ``FeedServer``: a separate process serving them on loopback (127.0.0.2 onwards), each answer
  after ``latency`` seconds, honouring ``If-None-Match``.
- ``collected_store``: a config for those feeds and a SQLite store filled by the real
  ``newsletter collect`` command.
- ``add_readers``: confirmed readers spread over every sector combination the sign-up form can
  produce (any non-empty set of the nine sectors: 511).
- ``measure``: runs a ``newsletter ...`` subprocess and samples its own peak memory (VmHWM in
  ``/proc/<pid>/status``), never the resource totals of a parent's children.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-25T06:00:00+00:00"

# what each sector's stories are about (the words its rules know), in our own phrasing
TOPICS = {
    "evs-battery": [
        "electric vehicle sales",
        "battery cell plant",
        "EV charging network",
        "solid-state battery line",
        "lithium-ion battery orders",
    ],
    "oil-gas": [
        "crude oil output",
        "LNG export terminal",
        "offshore oil field",
        "refinery throughput",
        "natural gas pipeline",
    ],
    "rare-earths-commodities": [
        "rare earth magnets supply",
        "rare earths processing",
        "iron ore shipments",
        "wheat futures",
        "commodity prices",
    ],
    "mining-metals": [
        "copper mine expansion",
        "gold mine output",
        "nickel smelter",
        "zinc mine restart",
        "aluminium smelter",
    ],
    "esg-renewables": [
        "offshore wind farm",
        "solar power auction",
        "green hydrogen project",
        "carbon capture plant",
        "renewable energy tender",
    ],
    "ai-semiconductors": [
        "chip foundry",
        "AI data centre",
        "semiconductor export",
        "GPU supply deal",
        "memory chip prices",
    ],
    "aerospace-defense": [
        "fighter jet order",
        "missile defence contract",
        "satellite launch",
        "defence budget",
        "drone maker",
    ],
    "sanctions-regulation": [
        "sanctions on tankers",
        "export controls",
        "antitrust probe",
        "new tariffs",
        "regulator fine",
    ],
    "business-politics": [
        "central bank rates",
        "quarterly profit",
        "merger talks",
        "election campaign",
        "stock market rally",
    ],
}
SLUGS = list(TOPICS)  # the nine sectors of config.yaml, in its order
VERBS = [
    "announces",
    "expands",
    "delays",
    "cuts",
    "doubles",
    "wins",
    "weighs",
    "plans",
    "halts",
    "secures",
    "reports",
    "targets",
    "opens",
    "sells",
    "backs",
]
PLACES = [
    "Chile",
    "Norway",
    "Ghana",
    "Peru",
    "Vietnam",
    "Poland",
    "Kenya",
    "Mexico",
    "Oman",
    "Kazakhstan",
    "Brazil",
    "Indonesia",
    "Canada",
    "Australia",
    "Morocco",
    "Finland",
    "Argentina",
    "Namibia",
    "Qatar",
    "Texas",
    "Bavaria",
    "Ontario",
    "Quebec",
    "Alberta",
]
SYLLABLES = [
    "var",
    "nex",
    "quil",
    "lon",
    "tor",
    "bri",
    "sen",
    "dal",
    "mor",
    "ka",
    "zen",
    "tri",
    "vol",
    "ast",
    "ril",
    "gon",
    "pel",
    "cor",
    "ven",
    "ux",
    "lis",
    "dor",
    "fa",
    "rho",
]
SUFFIXES = ["Energy", "Metals", "Motors", "Systems", "Resources", "Power", "Group", "Labs"]


def company_names(count: int, rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        names.add(f"{stem} {rng.choice(SUFFIXES)}" if rng.random() < 0.5 else stem)
    return sorted(names)


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    summary: str
    published: datetime


def _story(rng: random.Random, companies: Sequence[str], n: int, now: datetime) -> Item:
    sector = rng.choice(SLUGS)
    topic = rng.choice(TOPICS[sector])
    company = rng.choice(companies)
    place = rng.choice(PLACES)
    amount = rng.choice(
        [
            f"{rng.randint(2, 900)} million",
            f"${rng.randint(1, 90)} billion",
            f"{rng.randint(2, 60)}%",
        ]
    )
    title = f"{company} {rng.choice(VERBS)} {topic} in {place} worth {amount}"
    summary = (
        f"{company} said on Tuesday its {topic} plans in {place} would go ahead, "
        f"a move analysts tied to demand for {rng.choice(TOPICS[rng.choice(SLUGS)])}. "
        f"The company gave no further details about timing or partners."
    )
    published = now - timedelta(minutes=rng.randint(5, 20 * 60))
    return Item(title, f"https://news{n % 97}.example.com/story/{n}", summary, published)


def vocabulary_words(size: int) -> list[str]:
    """``size`` words for headlines from a small vocabulary: the sectors' own topic words
    first (so the stories still find their sectors), then verbs and places."""
    words: list[str] = []
    for phrase in [*chain_topics(), *VERBS, *PLACES]:
        for word in phrase.split():
            if word.lower() not in {w.lower() for w in words} and word.isalpha():
                words.append(word)
    return words[:size]


def chain_topics() -> list[str]:
    return [topic for topics in TOPICS.values() for topic in topics]


def _small_story(rng: random.Random, words: Sequence[str], n: int, now: datetime) -> Item:
    """A story whose headline and teaser are drawn from ``words`` alone (no names)."""
    title = " ".join(rng.choice(words) for _ in range(rng.randint(6, 10))).capitalize()
    summary = " ".join(rng.choice(words) for _ in range(rng.randint(18, 26))).capitalize() + "."
    published = now - timedelta(minutes=rng.randint(5, 20 * 60))
    return Item(title, f"https://news{n % 97}.example.com/story/{n}", summary, published)


def feed_items(
    feeds: int, items: int = 20, seed: int = 7, vocabulary: int = 0, thin: float = 0.0
) -> list[list[Item]]:
    """Every feed's stories; about 20 % of them are events that two to five outlets carry.
    With ``vocabulary``, every headline and teaser is drawn from that many words; ``thin`` is
    the share of stories whose feed gives no teaser (their article page would)."""
    rng = random.Random(seed)
    now = datetime.fromisoformat(NOW)
    companies = company_names(max(500, feeds * 3), rng)
    words = vocabulary_words(vocabulary) if vocabulary else []
    out: list[list[Item]] = [[] for _ in range(feeds)]
    slots = [(f, i) for f in range(feeds) for i in range(items)]
    rng.shuffle(slots)
    n = 0
    while slots:
        story = _small_story(rng, words, n, now) if words else _story(rng, companies, n, now)
        if thin and rng.random() < thin:
            story = Item(story.title, story.link, "", story.published)
        n += 1
        copies = rng.randint(2, 5) if rng.random() < 0.07 else 1
        taken = [slots.pop() for _ in range(min(copies, len(slots)))]
        for k, (feed, _) in enumerate(taken):
            if k % 2 == 0 and k:  # the same event, the headline reworded
                title = (
                    f"{story.title} again"
                    if words
                    else story.title.replace(" worth ", ", a deal worth ")
                )
                link = f"{story.link}-{feed}"
                out[feed].append(Item(title, link, story.summary, story.published))
            else:  # the story itself; or the same link, from another outlet
                out[feed].append(story)
    return out


def feed_body(n: int, items: Sequence[Item]) -> bytes:
    entries = "".join(
        f"<item><title>{item.title.replace('&', '&amp;')}</title><link>{item.link}</link>"
        f'<guid isPermaLink="false">feed-{n}-{k}</guid>'
        f"<pubDate>{format_datetime(item.published)}</pubDate>"
        f"<description><![CDATA[<p>{item.summary}</p>"
        f'<img src="https://t.example.com/{n}/{k}.gif" width="1" height="1">]]></description>'
        "</item>"
        for k, item in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Outlet {n}</title><link>https://outlet{n}.example.com/</link>"
        f"<description>Benchmark outlet {n}</description>{entries}</channel></rss>"
    ).encode()


def _serve(
    hosts: int,
    feeds: int,
    latency: float,
    seed: int,
    ready: Any,
    vocabulary: int = 0,
    thin: float = 0.0,
) -> None:  # pragma: no cover - runs in its own process
    items = feed_items(feeds, seed=seed, vocabulary=vocabulary, thin=thin)
    bodies = [feed_body(n, feed) for n, feed in enumerate(items)]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                n = int(lines[0].split()[1].rsplit("/", 1)[-1].removesuffix(".xml"))
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                if latency:
                    await asyncio.sleep(latency)
                etag = f'"feed-{n}-v1"'
                if headers.get("If-None-Match") == etag:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n".encode())
                else:
                    body = bodies[n]
                    writer.write(
                        (
                            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8"
                            f"\r\nETag: {etag}\r\nContent-Length: {len(body)}\r\n\r\n"
                        ).encode()
                        + body
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        ports = []
        for h in range(hosts):
            server = await asyncio.start_server(handle, f"127.0.0.{h + 2}", 0, backlog=1024)
            ports.append(server.sockets[0].getsockname()[1])
        ready.put(ports)
        await asyncio.sleep(24 * 3600)

    asyncio.run(main())


class FeedServer:
    """The generated feeds, served by a separate process on ``hosts`` loopback addresses."""

    def __init__(
        self,
        feeds: int,
        *,
        hosts: int = 50,
        latency: float = 0.2,
        seed: int = 7,
        vocabulary: int = 0,
        thin: float = 0.0,
    ):
        ctx = multiprocessing.get_context("fork")
        ready = ctx.Queue()
        self.process = ctx.Process(
            target=_serve,
            args=(hosts, feeds, latency, seed, ready, vocabulary, thin),
            daemon=True,
        )
        self.process.start()
        ports = ready.get(timeout=120)
        self.urls = [
            f"http://127.0.0.{n % hosts + 2}:{ports[n % hosts]}/{n}.xml" for n in range(feeds)
        ]

    def close(self) -> None:
        self.process.kill()
        self.process.join()


def write_config(folder: Path, feed_urls: Sequence[str], **sections: Any) -> Path:
    path = folder / "config.yaml"
    data: dict[str, Any] = {
        "sectors_file": str(ROOT / "config.yaml"),
        "database": f"sqlite:///{folder / 'newsletter.db'}",
        "feeds": [{"name": f"Outlet {n}", "url": url} for n, url in enumerate(feed_urls)],
        **sections,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "NEWSLETTER_NOW": NOW, **extra}


def newsletter(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "newsletter", "--config", str(config), *args]


def collected_store(folder: Path, feeds: int, *, latency: float = 0.0, **sections: Any) -> Path:
    """A config of ``feeds`` generated feeds whose store the real ``newsletter collect`` filled."""
    server = FeedServer(feeds, latency=latency)
    try:
        config = write_config(folder, server.urls, **sections)
        done = subprocess.run(
            newsletter(config, "collect"),
            env=environment(),
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if done.returncode:
            raise SystemExit(f"collect failed:\n{done.stderr[-2000:]}")
    finally:
        server.close()
    return config


def combinations() -> list[list[str]]:
    """Every sector choice the sign-up form can produce: each non-empty set, in config order."""
    return [list(c) for n in range(1, len(SLUGS) + 1) for c in itertools.combinations(SLUGS, n)]


def add_readers(database: str, count: int, *, seed: int = 3) -> int:
    """``count`` confirmed readers, spread evenly over every combination; returns how many."""
    from sqlalchemy import insert

    from newsletter.models import SubscriberStatus
    from newsletter.store import Store
    from newsletter.store.tables import subscribers

    combos = [json.dumps(c) for c in combinations()]
    rng = random.Random(seed)
    now = datetime.fromisoformat(NOW)
    store = Store.open(database)
    chunk = 50_000
    for start in range(0, count, chunk):
        rows = [
            {
                "email": f"reader{n:07d}@example.com",
                "name": f"Reader {n}" if n % 3 else "",
                "sectors": combos[rng.randrange(len(combos))],
                "status": SubscriberStatus.CONFIRMED,
                "token": secrets.token_urlsafe(24),
                "created_at": now,
                "updated_at": now,
            }
            for n in range(start, min(count, start + chunk))
        ]
        with store.engine.begin() as conn:
            conn.execute(insert(subscribers), rows)
    store.close()
    return len(combos)


@dataclass(frozen=True)
class Measured:
    wall: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str
    cpu: float = 0.0  # CPU seconds the process used (with the workers it started and waited for)


def measure(command: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run a command; its wall time and its own peak resident memory, sampled from /proc."""
    return measure_together([command], [env or environment()])[0]


def measure_together(
    commands: Sequence[Sequence[str]], envs: Sequence[dict[str, str]]
) -> list[Measured]:
    """Start the commands at once; each one's wall time (from the common start), its own
    peak resident memory, sampled from /proc while it runs, and its own CPU time, from its
    exit (``wait4``)."""
    import threading

    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
        for command, env in zip(commands, envs, strict=True)
    ]
    outs: list[list[str]] = [[] for _ in processes]
    errs: list[list[str]] = [[] for _ in processes]
    readers = [
        threading.Thread(target=_drain, args=(pipe, into), daemon=True)
        for p, o, e in zip(processes, outs, errs, strict=True)
        for pipe, into in ((p.stdout, o), (p.stderr, e))
    ]
    for thread in readers:
        thread.start()
    peaks = [0] * len(processes)
    walls = [0.0] * len(processes)
    cpus = [0.0] * len(processes)
    while any(w == 0.0 for w in walls):
        for n, process in enumerate(processes):
            if walls[n]:
                continue
            peaks[n] = max(peaks[n], high_water_kb(process.pid))
            pid, status, used = os.wait4(process.pid, os.WNOHANG)
            if pid:  # reaped here, with what it used: the process's own figure
                process.returncode = os.waitstatus_to_exitcode(status)
                cpus[n] = used.ru_utime + used.ru_stime
                walls[n] = time.perf_counter() - started
        time.sleep(0.02)
    for thread in readers:
        thread.join()
    return [
        Measured(
            walls[n], peaks[n] / 1024, p.returncode, "".join(outs[n]), "".join(errs[n]), cpus[n]
        )
        for n, p in enumerate(processes)
    ]


def _drain(pipe: Any, into: list[str]) -> None:
    into.append(pipe.read())


def high_water_kb(pid: int) -> int:
    """VmHWM (peak resident set) of one process, from /proc; 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


@contextlib.contextmanager
def serving(config: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`newsletter serve` as a subprocess on a free port, once it answers /healthz:
    (its address, the process)."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        newsletter(config, "serve", "--port", str(port)),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("newsletter serve did not start")
            time.sleep(0.1)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)
