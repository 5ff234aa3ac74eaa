"""Several `newsletter send` processes on one edition, as send workers on several machines
would run (each given its own host identity): every reader exactly once; a worker killed
mid-send has its readers taken over by the others once its heartbeat goes silent. Runs on the
suite's database: SQLite, or PostgreSQL (claims with SKIP LOCKED) with
NEWSLETTER_TEST_DATABASE_URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.models import DeliveryStatus
from newsletter.store import Store
from tests.conftest import NOW, ROOT
from tests.sendgrid_server import SendgridServer, sendgrid_server
from tests.test_large_faults import READERS, _readers
from tests.test_send import KEY, _wait_for, make_config

WORKERS = 4
BATCH = 250
IN_FLIGHT = 2  # requests in flight per worker


@pytest.fixture
def server() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key=KEY, keep_bodies=False) as s:
        yield s


def _worker(config: Path, host: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SENDGRID_API_KEY": KEY,
        "NEWSLETTER_NOW": NOW.isoformat(),
        "NEWSLETTER_HOST": host,  # a machine of its own: no PID check across "hosts"
    }
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", str(config), "send", "--no-collect"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kill_one", [False, True])
def test_four_workers_send_every_reader_once_and_take_over_a_killed_one(
    tmp_path: Path, server: SendgridServer, kill_one: bool
) -> None:
    sendgrid = {"api_host": server.url, "concurrency": IN_FLIGHT}
    config = make_config(
        tmp_path,
        "sendgrid",
        batch_size=BATCH,
        sendgrid=sendgrid,
        heartbeat_seconds=0.5,
        claim_timeout_minutes=0.1,  # 6 s of silence and a worker's rows go to the others
    )
    _readers(config)
    server.delay = 0.05
    workers = [_worker(config.path, f"host-{n}") for n in range(WORKERS)]
    if kill_one:
        _wait_for(lambda: server.requests >= 8, timeout=120)
        workers[0].send_signal(signal.SIGKILL)
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        if not (kill_one and worker is workers[0]):
            assert worker.returncode == 0, err.decode()[-2000:]
    assert len(server.recipients) == READERS  # nobody missed
    twice = sum(n - 1 for n in server.recipients.values())
    # no duplicates, except what the killed worker had in flight
    assert twice <= (IN_FLIGHT * BATCH if kill_one else 0)
    store = Store.open(config.database_url)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None
    assert store.ledger.delivery_counts(ref.id) == {DeliveryStatus.SENT: READERS}
    store.close()
