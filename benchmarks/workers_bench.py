"""Send workers benchmark: one edition to N readers on PostgreSQL, by 1, 2 and 4 processes.

    python benchmarks/workers_bench.py [--readers 1000000] [--feeds 500] [--delay 0.2]
        [--workers 1,2,4] [--concurrency N] [--database postgresql+psycopg://...]

The store is the realistic one of send_bench.py (--feeds generated feeds collected by the real
`newsletter collect`, N confirmed readers over all 511 sector combinations), built once in a
PostgreSQL database and copied (CREATE DATABASE ... TEMPLATE) before each run, so every run
starts from the same unsent day. For each worker count, that many `newsletter send
--no-collect` processes start at once, each as another host (NEWSLETTER_HOST) with its own
requests in flight (the defaults: delivery.readers_in_flight; --concurrency N sets
delivery.sendgrid.concurrency), against the local SendGrid stand-in of the tests,
which answers each request after --delay seconds. Measured: the wall time until the last
worker exits (process start included), each worker's own peak memory (VmHWM sampled from
/proc), at the server, the readers it saw and the most copies one reader got, and where the
machine's CPU went while the workers ran (its busy time from /proc/stat, the workers' own,
the stand-in's; the rest is PostgreSQL's, for the most part).

--database names a server where this may create and drop databases (bench_*); without it a
throwaway cluster is started in a temporary folder (initdb and pg_ctl, as `nobody` when run
as root; shared_buffers 1GB) and removed at the end. Before each run the copied database's
tables are read into memory (pg_prewarm), as a running server has them.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402
from benchmarks.send_bench import KEY, serve  # noqa: E402


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster in a temporary folder, on a free port: its admin URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    if not found[-1]:
        raise SystemExit("no initdb found: install PostgreSQL's server, or pass --database")
    bin_dir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="newsletter-bench-pg."))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(folder, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    # shared_buffers as a database server for a million readers would have it (a quarter of
    # a small server's memory), so the tables the send reads stay in memory
    options = (
        f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=100"
        f" -c shared_buffers={SHARED_BUFFERS}"
    )
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-l", str(folder / "log"), "-w", "-o", options, "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


SHARED_BUFFERS = "1GB"
CORES = os.cpu_count() or 1
WARMED = ("subscribers", "deliveries", "stories", "editions")


def warm(url: str) -> None:
    """Read the tables a send reads into memory, as a running server has them: a freshly
    copied database would otherwise be read from disk, page by page, on first use."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        try:
            conn.execute(sqlalchemy.text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
            for table in WARMED:
                conn.execute(sqlalchemy.text(f"SELECT pg_prewarm('{table}')"))
                conn.execute(
                    sqlalchemy.text(
                        "SELECT pg_prewarm(indexrelid) FROM pg_index"
                        f" WHERE indrelid = '{table}'::regclass"
                    )
                )
        except sqlalchemy.exc.DBAPIError:  # no pg_prewarm: a full read of each, at least
            conn.rollback()
            for table in WARMED:
                conn.execute(sqlalchemy.text(f"SELECT count(*) FROM {table}"))
    engine.dispose()


def admin(url: str, *statements: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(sqlalchemy.text(statement))
    engine.dispose()


def on(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def server_stats(stats: Any) -> tuple[int, int, int, int]:
    time.sleep(0.5)  # the server reports every 0.2 s
    last = (0, 0, 0, 0)
    while not stats.empty():
        last = stats.get()
    return last


def machine_cpu() -> float:
    """CPU seconds the machine's cores have been busy (not idle, not waiting on a disk)."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds a running process has used."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_workers(config: Path, url: str, workers: int, delay: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    ready, stats = ctx.Queue(), ctx.Queue()
    server = ctx.Process(target=serve, args=(delay, ready, stats), daemon=True)
    server.start()
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["delivery"]["sendgrid"]["api_host"] = ready.get(timeout=30)  # this run's stand-in
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        envs = [
            workload.environment(
                SENDGRID_API_KEY=KEY, NEWSLETTER_DATABASE_URL=url, NEWSLETTER_HOST=f"worker-{n + 1}"
            )
            for n in range(workers)
        ]
        command = workload.newsletter(config, "send", "--no-collect")
        before = (machine_cpu(), process_cpu(server.pid))
        runs = workload.measure_together([command] * workers, envs)
        after = (machine_cpu(), process_cpu(server.pid))
        requests, readers, copies, most = server_stats(stats)
    finally:
        server.kill()
        server.join()
    busy, stand_in = (b - a for a, b in zip(before, after, strict=True))
    senders = sum(r.cpu for r in runs)  # each worker's own, read at its exit
    return {
        # CPU seconds while the workers ran: the machine's, the workers', the stand-in's, and
        # the rest (PostgreSQL, for the most part)
        "cpu": (busy, senders, stand_in, busy - senders - stand_in),
        "workers": workers,
        "wall": max(r.wall for r in runs),
        "peaks": [r.peak_mb for r in runs],
        "codes": [r.returncode for r in runs],
        "tails": [(r.stdout.strip() or r.stderr.strip()).splitlines()[-1:] for r in runs],
        "errors": [r.stderr[-2000:] for r in runs if r.returncode],
        "requests": requests,
        "readers": readers,
        "copies": copies,
        "most": most,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--database", default="", help="an admin URL of a PostgreSQL server")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="requests in flight per worker (delivery.sendgrid.concurrency); 0: the defaults "
        "(at most delivery.readers_in_flight readers in flight per worker)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    with contextlib.ExitStack() as stack:
        server_url = args.database or stack.enter_context(throwaway_postgres())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        admin(server_url, "DROP DATABASE IF EXISTS bench_base", "CREATE DATABASE bench_base")
        base = on(server_url, "bench_base")
        started = time.perf_counter()
        delivery: dict[str, Any] = {
            "backend": "sendgrid",
            "sendgrid": {"api_host": "http://127.0.0.1:9"},  # set per run
            "preflight": False,  # the links point at no public web app in a benchmark
        }
        if args.concurrency:
            delivery["sendgrid"]["concurrency"] = args.concurrency
        os.environ["NEWSLETTER_DATABASE_URL"] = base  # the collect fills the base database
        config = workload.collected_store(tmp, args.feeds, delivery=delivery)
        del os.environ["NEWSLETTER_DATABASE_URL"]
        combos = workload.add_readers(base, args.readers)
        setup = time.perf_counter() - started
        results = []
        for workers in counts:
            name = f"bench_run_{workers}"
            admin(
                server_url,
                f"DROP DATABASE IF EXISTS {name}",
                f"CREATE DATABASE {name} TEMPLATE bench_base",
            )
            warm(on(server_url, name))
            results.append(run_workers(config, on(server_url, name), workers, args.delay))
            admin(server_url, f"DROP DATABASE {name}")
        admin(server_url, "DROP DATABASE bench_base")

    in_flight = (
        f"{args.concurrency} request(s) in flight"
        if args.concurrency
        else "its requests in flight at the defaults (delivery.readers_in_flight)"
    )
    where = f"a throwaway cluster, shared_buffers {SHARED_BUFFERS}" if not args.database else ""
    print(
        f"machine: {workload.machine()}; PostgreSQL on the same machine ({where or args.database})"
    )
    print(
        f"workload: {args.readers:,} confirmed readers over {combos} sector combinations; "
        f"an edition from {args.feeds} generated feeds ({args.feeds * 20:,} stories); "
        f"SendGrid stand-in on 127.0.0.1 answering after {args.delay * 1000:.0f} ms; "
        f"each worker {in_flight} (setup {setup:.0f} s)"
    )
    one = next((r["wall"] for r in results if r["workers"] == 1), None)
    for r in results:
        speedup = f", {one / r['wall']:.2f}x one worker" if one else ""
        peaks = ", ".join(f"{p:.0f}" for p in r["peaks"])
        print(
            f"{r['workers']} worker(s): wall {r['wall']:.1f} s{speedup}; peak memory per worker "
            f"(VmHWM) {peaks} MB; server: {r['requests']:,} requests, {r['readers']:,} distinct "
            f"readers, at most {r['copies']} copies to one reader, at most {r['most']} requests "
            f"at once; exits {r['codes']}"
        )
        busy, senders, stand_in, rest = r["cpu"]
        print(
            f"    CPU while they ran: {busy:.0f} s of the machine's {r['wall'] * CORES:.0f} "
            f"({CORES} cores x the wall time): the workers {senders:.0f} s, the SendGrid "
            f"stand-in {stand_in:.0f} s, the rest (PostgreSQL) {rest:.0f} s"
        )
        for tail in r["tails"]:
            print(f"    {tail[0] if tail else '(no output)'}")
        for error in r["errors"]:
            print(error)


if __name__ == "__main__":
    main()
