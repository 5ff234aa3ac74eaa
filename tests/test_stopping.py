"""A stop means stop: SIGTERM or Ctrl-C anywhere in `newsletter send` (start-up, the collect, a
rate-limit wait, a retry's backoff, requests in flight) starts nothing new, finishes and records
what is under way, says so, and exits 0; the next run sends the rest, nobody twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.models import DeliveryStatus
from newsletter.store import Store
from tests.conftest import DEMO, NOW, ROOT, write_config
from tests.feedserver import FeedServer, serve
from tests.sendgrid_server import SendgridServer, sendgrid_server
from tests.test_send import KEY, _wait_for, add_readers, collected, make_config


@pytest.fixture
def server() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key=KEY) as s:
        yield s


def start_send(config_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SENDGRID_API_KEY": KEY, "NEWSLETTER_NOW": NOW.isoformat()}
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", str(config_path), "send", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def finish(process: subprocess.Popen[bytes]) -> str:
    """Its output, once it has exited 0 (a guard of 60 s against a send that does not stop)."""
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode() + out.decode()
    assert "Traceback" not in err.decode()
    return out.decode()


def sendgrid_config(tmp_path: Path, server: SendgridServer, readers: int, **keys: object) -> Path:
    sendgrid = {"api_host": server.url, **keys.pop("sendgrid", {})}  # type: ignore[dict-item]
    config = make_config(
        tmp_path, "sendgrid", batch_size=10, readers_in_flight=20, sendgrid=sendgrid, **keys
    )
    store = collected(config)
    add_readers(config, store, readers)
    store.close()
    return config.path


def rerun_sends_the_rest_once(config_path: Path, server: SendgridServer, readers: int) -> None:
    server.delay = 0.0
    server.faults.clear()
    finish(start_send(config_path, "--no-collect"))
    assert len(server.recipients) == readers and set(server.recipients.values()) == {1}


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]
)
@pytest.mark.slow
def test_a_stop_starts_no_new_request_and_records_those_in_flight(
    tmp_path: Path, server: SendgridServer, signum: int
) -> None:
    path = sendgrid_config(tmp_path, server, 60)
    server.delay = 2.0  # a slow provider: both requests are still in flight at the signal
    process = start_send(path, "--no-collect")
    _wait_for(lambda: server.in_flight == 2)
    process.send_signal(signum)
    out = finish(process)
    assert "Stopped by a signal" in out and "nothing new was started" in out
    assert server.requests == 2  # no request started after the signal
    assert len(server.recipients) == 20  # the two in flight, finished
    store = Store.open(load_config(path).database_url)
    try:
        ref = store.editions.edition_ref(NOW.date())
        assert ref is not None
        counts = store.ledger.delivery_counts(ref.id)
    finally:
        store.close()
    assert counts == {DeliveryStatus.SENT: 20, DeliveryStatus.PENDING: 40}  # recorded, given back
    rerun_sends_the_rest_once(path, server, 60)


@pytest.mark.slow  # in `pytest -m slow` (.ci/run runs it): a heavy real run
def test_a_stop_during_a_rate_limit_wait_sends_nothing_more(
    tmp_path: Path, server: SendgridServer
) -> None:
    path = sendgrid_config(tmp_path, server, 30)
    server.faults.append(("429", 600))  # the limit resets in ten minutes
    server.delay = 0.2
    process = start_send(path, "--no-collect")
    _wait_for(lambda: server.requests >= 2)  # the 429, and the other request in flight
    process.send_signal(signal.SIGTERM)
    out = finish(process)  # at once, not after the reset
    assert "Stopped by a signal" in out
    assert server.requests == 2 and len(server.recipients) <= 10
    rerun_sends_the_rest_once(path, server, 30)


@pytest.mark.slow  # in `pytest -m slow` (.ci/run runs it): a heavy real run
def test_a_stop_during_a_retry_backoff_sends_nothing_more(
    tmp_path: Path, server: SendgridServer
) -> None:
    path = sendgrid_config(tmp_path, server, 10, sendgrid={"backoff_seconds": 60})
    server.faults.append(("500", 0))  # the one request fails; its retry waits a minute
    process = start_send(path, "--no-collect")
    _wait_for(lambda: server.requests >= 1)
    process.send_signal(signal.SIGTERM)
    out = finish(process)
    assert "Stopped by a signal" in out and "0 failed" in out
    assert server.requests == 1 and not server.recipients  # no retry after the stop
    rerun_sends_the_rest_once(path, server, 10)


@pytest.mark.slow
def test_a_stop_during_the_collect_sends_nothing(tmp_path: Path, server: SendgridServer) -> None:
    feeds: FeedServer
    with serve() as feeds:
        hanging = feeds.add("/slow.xml", b"<rss/>", delay=120)
        demo = sorted((DEMO / "feeds").glob("*.xml"))[0]
        data: dict[str, object] = {
            "feeds": [{"name": "Quick", "url": str(demo)}, {"name": "Slow", "url": hanging}],
            "delivery": {
                "backend": "sendgrid",
                "preflight": False,
                "sendgrid": {"api_host": server.url},
            },
        }
        config = load_config(write_config(tmp_path, data))
        store = Store.open(config.database_url)
        add_readers(config, store, 5)
        store.close()
        process = start_send(config.path)
        _wait_for(lambda: feeds.requests)  # the slow feed is being fetched
        process.send_signal(signal.SIGTERM)
        out = finish(process)
    assert "left" in out and "Slow" in out  # the feed not fetched is named
    assert "Stopped by a signal before sending: nothing was sent" in out
    assert server.requests == 0


def caught(pid: int, signum: int) -> bool:
    """Whether the process has a handler of its own for ``signum`` (Linux's SigCgt mask)."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signum - 1)))


@pytest.mark.slow  # in `pytest -m slow` (.ci/run runs it): a heavy real run
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_a_stop_while_the_command_starts_sends_nothing_and_says_so(
    tmp_path: Path, server: SendgridServer
) -> None:
    path = sendgrid_config(tmp_path, server, 10)
    process = start_send(path, "--no-collect")
    # the signal lands as soon as the command can catch it: while it is still loading
    _wait_for(lambda: process.poll() is not None or caught(process.pid, signal.SIGTERM))
    process.send_signal(signal.SIGTERM)
    out = finish(process)
    assert "Stopped by a signal before sending: nothing was sent" in out
    assert server.requests == 0
    rerun_sends_the_rest_once(path, server, 10)


@pytest.mark.slow
def test_other_commands_end_on_a_signal_as_usual(tmp_path: Path) -> None:
    """Only send and run stop cleanly; `serve` or `status` must still die on SIGTERM."""
    config = make_config(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", str(config.path), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    _wait_for(lambda: process.poll() is not None or caught(process.pid, signal.SIGTERM))
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGTERM)
