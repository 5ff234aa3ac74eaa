"""Archive benchmark: requests per second that `newsletter serve` answers for public pages.

    python benchmarks/archive_bench.py [--feeds 300] [--readers 500] [--seconds 10] [--clients 32]

Collects N generated feeds with the real `newsletter collect`, sends the day's edition to M
readers through the outbox with the real `newsletter send`, starts `newsletter serve` as a
subprocess, then a load generator in this process (asyncio streams speaking HTTP/1.1 on
keep-alive connections, `--clients` requests in flight) asks for the edition's archive page,
then the archive list, then a sector page, for `--seconds` each. Prints the workload, the
machine, requests per second, latency percentiles, and the server's own peak memory (VmHWM
from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402


async def load(url: str, seconds: float, clients: int) -> tuple[int, list[float], int]:
    """(answers, latencies in seconds, errors) for ``clients`` keep-alive connections asking
    ``url`` in turn. The client speaks plain HTTP/1.1 on asyncio streams: a full HTTP client
    library costs more CPU per request than the server being measured, on the same cores."""
    parts = httpx.URL(url)
    request = (
        f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n"
        "Accept-Encoding: identity\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        try:
            while time.perf_counter() < end:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                errors += not head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return len(latencies), latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--readers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = workload.collected_store(folder, args.feeds)
        workload.add_readers(f"sqlite:///{folder / 'newsletter.db'}", args.readers)
        sent = subprocess.run(
            workload.newsletter(config, "send", "--no-collect"),
            env=workload.environment(),
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if sent.returncode:
            raise SystemExit(f"send failed:\n{sent.stderr[-2000:]}")
        day = workload.NOW[:10]
        with workload.serving(config, workload.environment()) as (base, server):
            page = httpx.get(f"{base}/archive/{day}")
            if page.status_code != 200:
                raise SystemExit(f"/archive/{day}: {page.status_code}")
            size = len(page.content)
            results = {}
            for path in (f"/archive/{day}", "/archive", "/sectors/oil-gas"):
                httpx.get(base + path)  # the first answer renders the page; the rest are kept
                results[path] = asyncio.run(load(base + path, args.seconds, args.clients))
            peak_mb = workload.high_water_kb(server.pid) / 1024
    print(
        f"workload: the edition of {day} built from {args.feeds} generated feeds and sent to "
        f"{args.readers} readers (outbox); `newsletter serve` (one uvicorn process) asked by "
        f"{args.clients} keep-alive clients in this process for {args.seconds:g} s per page; "
        f"the edition page is {size / 1024:.0f} KB"
    )
    print(f"machine: {workload.machine()}")
    for path, (count, latencies, errors) in results.items():
        ordered = sorted(latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        print(
            f"{path}: {count / args.seconds:.0f} requests/s, p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, {errors} errors"
        )
    print(f"server peak memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
