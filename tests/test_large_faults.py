"""The large runs of issue 12, marked slow: `.ci/run` runs them after the quick suite.

20,000 readers through the local SendGrid server: killed with SIGKILL at ten seeded random
moments and resumed after each (nobody missed, duplicates at most the requests in flight per
kill), the same with SIGTERM (no duplicates), an unencodable address among them (19,999
delivered on the first run; a name hiding a line break is cleaned and delivered), and a 500
storm followed by --retry-failed."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from newsletter.config import Config
from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.records import NewReader
from newsletter.store import Store
from tests.conftest import NOW
from tests.sendgrid_server import SendgridServer, sendgrid_server
from tests.smtp_server import Inbox, start_smtp
from tests.test_send import KEY, _send_process, _wait_for, collected, make_config

pytestmark = pytest.mark.slow
READERS = 20_000
BATCH = 1_000


@pytest.fixture
def server() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key=KEY, keep_bodies=False) as s:
        yield s


def _readers(config: Config, extra: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
    store = collected(config)
    rows = [
        NewReader(f"reader{i:05d}@example.com", f"Reader {i}", (), f"token-{i:05d}-{'x' * 30}")
        for i in range(READERS - len(extra))
    ]
    rows += [
        NewReader(email, name, (), f"bad-{n}-{'y' * 36}") for n, (email, name) in enumerate(extra)
    ]
    store.readers.bulk_import(rows, [], now=NOW)
    store.close()


def _finish(config: Config, server: SendgridServer) -> None:
    rerun = _send_process(config.path, server)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode in (0, 1), err.decode()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_twenty_thousand_readers_survive_ten_kills(
    tmp_path: Path, server: SendgridServer, signum: int
) -> None:
    # the defaults: 64 requests of up to 1,000 readers, at most 2,000 readers in flight
    config = make_config(tmp_path, "sendgrid", batch_size=BATCH, sendgrid={"api_host": server.url})
    bound = config.file.delivery.readers_in_flight
    _readers(config)
    server.delay = 0.2  # a provider with real latency
    rng = random.Random(12 if signum == signal.SIGKILL else 13)
    kills = 0
    for _ in range(10):
        process = _send_process(config.path, server)
        target = server.requests + rng.randint(1, 2)
        _wait_for(
            lambda p=process, t=target: server.requests >= t or p.poll() is not None, timeout=120
        )
        if process.poll() is not None:
            process.communicate(timeout=120)  # (closes its pipes)
            break  # the edition was finished before this kill
        process.send_signal(signum)
        process.communicate(timeout=120)
        kills += 1
    server.delay = 0.0
    _finish(config, server)
    assert len(server.recipients) == READERS  # nobody missed
    twice = sum(n - 1 for n in server.recipients.values())
    if signum == signal.SIGTERM:
        assert twice == 0
    else:
        assert bound == 2_000 and twice <= kills * bound  # at most those in flight per kill
    store = Store.open(config.database_url)
    ref = store.editions.edition_ref(NOW.date())
    assert ref is not None and ref.status == EditionStatus.SENT
    store.close()


@pytest.mark.parametrize("backend", ["sendgrid", "smtp", "outbox"])
def test_an_unencodable_reader_among_twenty_thousand_fails_alone_and_a_dirty_name_never(
    tmp_path: Path, server: SendgridServer, backend: str
) -> None:
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    try:
        config = make_config(
            tmp_path,
            backend,
            batch_size=BATCH if backend == "sendgrid" else 100,
            sendgrid={"api_host": server.url},
            smtp={"host": "127.0.0.1", "port": port},
        )
        bad = [("josé@example.com", ""), ("crlf@example.com", "=?utf-8?q?A=0D=0AB?=")]
        _readers(config, bad)
        process = _send_process(config.path, server)
        out, _ = process.communicate(timeout=600)
    finally:
        controller.stop()
    assert process.returncode == 1
    reached = {
        "sendgrid": lambda: len(server.recipients),
        "smtp": lambda: len(set(inbox.to)),
        "outbox": lambda: len(list((config.outbox_dir / "2026-11-25").glob("*.eml"))),
    }[backend]()
    assert reached == READERS - 1  # the name's encoded line break is cleaned, never a failure
    text = out.decode()
    assert "josé@example.com" in text and "crlf@example.com" not in text


def test_a_storm_of_500s_then_retry_failed_misses_nobody(
    tmp_path: Path, server: SendgridServer
) -> None:
    config = make_config(
        tmp_path,
        "sendgrid",
        batch_size=100,
        sendgrid={"api_host": server.url, "max_retries": 0},
    )
    _readers(config)
    rng = random.Random(7)
    server.faults.extend(("500", 0) if rng.random() < 0.7 else ("accept", 0) for _ in range(200))
    process = _send_process(config.path, server)
    process.communicate(timeout=300)
    assert 0 < len(server.recipients) < READERS
    server.faults.clear()
    retry = _send_process(config.path, server, "--retry-failed")
    _, err = retry.communicate(timeout=300)
    assert retry.returncode == 0, err.decode()
    assert len(server.recipients) == READERS and set(server.recipients.values()) == {1}
    engine = sqlalchemy.create_engine(config.database_url)
    with engine.connect() as conn:
        sent = conn.execute(
            sqlalchemy.text("SELECT count(*) FROM deliveries WHERE status = :status"),
            {"status": DeliveryStatus.SENT.value},
        ).scalar_one()
    engine.dispose()
    assert sent == READERS
