"""Event Webhook benchmark: signed batches of 10,000 SendGrid events posted to the real
`newsletter serve`.

    python benchmarks/webhook_bench.py [--events 10000] [--readers 50000] [--batches 5]

Starts `newsletter serve` as a subprocess on a temporary SQLite store of N confirmed readers,
with a verification key made here (ECDSA P-256, as SendGrid's). Posts `--batches` batches of
`--events` events each, shaped and mixed as SendGrid sends them for a daily edition (mostly
delivered, opens and clicks; some deferrals, bounces, spam reports and unsubscribes), each
signed over its timestamp and body. Prints each answer's time (signature check, parsing,
matching and storing: the answer comes once the batch is stored), the time until the
background worker has applied every event, the same batch posted again (SendGrid's retry:
nothing new), and the server's own peak memory (VmHWM from /proc).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402

MIX = [  # (event, share) of a day's events
    ("delivered", 55),
    ("processed", 10),
    ("open", 18),
    ("click", 9),
    ("deferred", 3),
    ("bounce", 2),
    ("dropped", 1),
    ("spamreport", 1),
    ("unsubscribe", 1),
]


def batch(
    size: int, readers: int, round_: int, at: int, rng: random.Random
) -> list[dict[str, object]]:
    kinds = [kind for kind, share in MIX for _ in range(share)]
    out: list[dict[str, object]] = []
    for n in range(size):
        kind = rng.choice(kinds)
        reader = rng.randrange(1, readers + 1)
        event: dict[str, object] = {
            "email": f"reader{reader - 1:07d}@example.com",
            "timestamp": at - rng.randrange(3600),
            "smtp-id": f"<{round_}.{n}@ismtpd0001p1lon1.sendgrid.net>",
            "event": kind,
            "category": ["edition-2026-11-25"],
            "sg_event_id": f"ev-{round_}-{n}-{rng.getrandbits(48):012x}",
            "sg_message_id": f"msg{round_}x{n}.filterdrecv-5bd8c6f-1-{rng.getrandbits(32):08x}",
            "edition_id": "1",
            "subscriber_id": str(reader),
        }
        if kind in ("open", "click"):
            event["useragent"] = (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
            )
            event["ip"] = f"198.51.100.{rng.randrange(1, 255)}"
        if kind == "click":
            event["url"] = f"https://news.example.com/story/{rng.randrange(40)}"
        if kind == "bounce":
            event.update(
                type="bounce", status="5.1.1", reason="550 5.1.1 The email account does not exist"
            )
        if kind == "deferred":
            event.update(response="452 4.2.2 Mailbox full", attempt="2")
        if kind == "dropped":
            event["reason"] = "Bounced Address"
        out.append(event)
    return out


def signed(
    key: ec.EllipticCurvePrivateKey, events: object, at: int
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    signature = key.sign(str(at).encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(at),
    }


def pending(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return int(
            conn.execute("select count(*) from events where applied_at is null").fetchone()[0]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--readers", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    at = int(datetime.fromisoformat(workload.NOW).timestamp())
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = workload.write_config(folder, [])
        workload.add_readers(f"sqlite:///{folder / 'newsletter.db'}", args.readers)
        env = workload.environment(SENDGRID_WEBHOOK_KEY=public)
        with workload.serving(config, env) as (base, server):
            answers, applied, sizes = [], [], []
            client = httpx.Client(timeout=60)
            last = b"", {}
            for round_ in range(args.batches):
                body, headers = signed(key, batch(args.events, args.readers, round_, at, rng), at)
                sizes.append(len(body))
                started = time.perf_counter()
                answer = client.post(f"{base}/webhooks/sendgrid", content=body, headers=headers)
                answers.append(time.perf_counter() - started)
                if answer.status_code != 200 or answer.json()["new"] != args.events:
                    raise SystemExit(f"batch {round_}: {answer.status_code} {answer.text[:300]}")
                while pending(folder / "newsletter.db"):
                    time.sleep(0.01)
                applied.append(time.perf_counter() - started)
                last = body, headers
            started = time.perf_counter()
            again = client.post(f"{base}/webhooks/sendgrid", content=last[0], headers=last[1])
            retry = time.perf_counter() - started
            assert again.json()["new"] == 0, again.text
            peak_mb = workload.high_water_kb(server.pid) / 1024
    print(
        f"workload: {args.batches} signed batches of {args.events:,} SendGrid events "
        f"({statistics.mean(sizes) / 1e6:.1f} MB each; {', '.join(f'{k} {s}%' for k, s in MIX)}) "
        f"for {args.readers:,} readers, posted to `newsletter serve` (SQLite)"
    )
    print(f"machine: {workload.machine()}")
    print(
        f"answered (verified, parsed, matched, stored): median {statistics.median(answers):.2f} s, "
        f"min {min(answers):.2f} s, max {max(answers):.2f} s"
    )
    print(
        f"applied by the worker (from the post): median {statistics.median(applied):.2f} s, "
        f"max {max(applied):.2f} s"
    )
    print(f"the same batch again (SendGrid's retry, nothing new): {retry:.2f} s")
    print(f"server peak memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
