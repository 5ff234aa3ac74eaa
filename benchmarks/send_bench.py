"""Send benchmark: N readers over every sector combination, through a SendGrid with latency.

    python benchmarks/send_bench.py [--readers 100000] [--feeds 500] [--delay 0.2]

The store is realistic: --feeds generated feeds (20 stories each, some carried by several
outlets) collected by the real `newsletter collect`, then N confirmed readers spread over all
511 sector combinations the sign-up form can produce. A separate process serves the local
SendGrid stand-in of the tests (tests/sendgrid_server.py: its documented limits enforced), each
answer after --delay seconds. `newsletter send --no-collect` runs as a subprocess through the
real `sendgrid` library; its wall time (process start included) and its own peak memory
(VmHWM sampled from /proc) are measured, and the server counts the readers it saw.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402
from tests.sendgrid_server import SendgridServer  # noqa: E402

KEY = "SG.benchmark-key"


def serve(delay: float, ready: Any, stats: Any) -> None:  # pragma: no cover - own process
    server = SendgridServer(api_key=KEY, keep_bodies=False)
    server.delay = delay
    ready.put(server.url)

    def report() -> None:
        while True:
            time.sleep(0.2)
            counts = (server.requests, len(server.recipients), server.most_copies)
            stats.put((*counts, server.most_in_flight))

    threading.Thread(target=report, daemon=True).start()
    server.httpd.serve_forever(0.05)


def start_server(delay: float) -> tuple[Any, str, Any]:
    """The SendGrid stand-in in a process of its own: (the process, its URL, its counts)."""
    ctx = multiprocessing.get_context("fork")
    ready, stats = ctx.Queue(), ctx.Queue()
    server = ctx.Process(target=serve, args=(delay, ready, stats), daemon=True)
    server.start()
    return server, ready.get(timeout=30), stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=0, help="0: the config's default")
    parser.add_argument(
        "--in-flight", type=int, default=0, help="delivery.readers_in_flight; 0: the default"
    )
    args = parser.parse_args()

    server, url, stats = start_server(args.delay)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sendgrid: dict[str, Any] = {"api_host": url}
            if args.concurrency:
                sendgrid["concurrency"] = args.concurrency
            # preflight off: the links point at no public web app in a benchmark
            delivery: dict[str, Any] = {
                "backend": "sendgrid",
                "sendgrid": sendgrid,
                "preflight": False,
            }
            if args.in_flight:
                delivery["readers_in_flight"] = args.in_flight
            config = workload.collected_store(Path(tmp), args.feeds, delivery=delivery)
            combos = workload.add_readers(f"sqlite:///{tmp}/newsletter.db", args.readers)
            env = workload.environment(SENDGRID_API_KEY=KEY)
            run = workload.measure(workload.newsletter(config, "send", "--no-collect"), env)
        time.sleep(0.5)
        last = (0, 0, 0, 0)
        while not stats.empty():
            last = stats.get()
    finally:
        server.kill()
    print(f"machine: {workload.machine()}")
    print(
        f"workload: {args.readers:,} confirmed readers over {combos} sector combinations; "
        f"an edition from {args.feeds} generated feeds ({args.feeds * 20:,} stories); "
        f"SendGrid stand-in on 127.0.0.1 answering after {args.delay * 1000:.0f} ms"
    )
    tail = (run.stdout.strip() or run.stderr.strip()).splitlines()
    print(f"send: {tail[-1] if tail else '(no output)'} (exit {run.returncode})")
    print(f"wall time of `newsletter send`: {run.wall:.1f} s (process start included)")
    print(
        f"server: {last[0]:,} requests, {last[1]:,} distinct readers, "
        f"at most {last[2]} copies to one reader, at most {last[3]} requests at once"
    )
    # the floor: the provider's latency for every reader, at the readers (and requests)
    # allowed in flight at once
    from newsletter.config.settings import DeliveryConfig, SendgridConfig

    in_flight = args.in_flight or DeliveryConfig().readers_in_flight
    parallel = args.concurrency or SendgridConfig().concurrency
    floor = max(args.readers / in_flight, last[0] / parallel) * args.delay
    print(
        f"floor: {floor:.1f} s ({args.readers:,} readers / {in_flight:,} in flight, or "
        f"{last[0]:,} requests / {parallel} at once, x {args.delay * 1000:.0f} ms); the send "
        f"took {run.wall / floor:.2f}x that, process start included"
    )
    print(f"peak memory of the sending process (its VmHWM): {run.peak_mb:.0f} MB")
    if run.returncode:
        print(run.stderr[-3000:])


if __name__ == "__main__":
    main()
