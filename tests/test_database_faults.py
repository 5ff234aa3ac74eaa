"""A database that fails mid-send (a full disk, a read-only database, lost connections) loses
no outcome: what the provider accepted is held, journaled, and recorded before anything new is
claimed; a send that gives up says so in one error with a hint; the next run records the
journal first. Counted at the provider: nobody missed, nobody twice.

The full disk is real: the sender's file-size limit (RLIMIT_FSIZE, set from outside with
prlimit) is lowered mid-send, so every write SQLite makes past the first 4 KB of a file fails as
it would on a full disk ("database or disk is full"), and raised again to free it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.delivery.journal import Journal, Outcome, apply_journals, database_key
from newsletter.models import DeliveryStatus
from newsletter.store import Store
from newsletter.store.claims import claim_is_alive, host_name
from tests.conftest import NOW, ROOT, TEST_DATABASE, write_config
from tests.sendgrid_server import SendgridServer, sendgrid_server
from tests.test_send import KEY, _wait_for
from tests.test_stopping import finish, rerun_sends_the_rest_once, sendgrid_config, start_send

sqlite_only = pytest.mark.skipif(
    bool(TEST_DATABASE), reason="fills the SQLite file's disk (the PostgreSQL run has its own)"
)
postgres_only = pytest.mark.skipif(
    not TEST_DATABASE, reason="needs NEWSLETTER_TEST_DATABASE_URL (`.ci/run` sets it)"
)
READERS = 60


@pytest.fixture
def server() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key=KEY) as s:
        yield s


def fill_disk(pid: int) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, hard))


def free_disk(pid: int) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


def journaled(folder: Path) -> int:
    """Outcome lines the journals in ``folder`` hold (their header lines not counted)."""
    lines = 0
    for path in folder.glob("*.journal"):
        found = [x for x in path.read_bytes().replace(b"\0", b"").splitlines() if x.strip()]
        lines += max(0, len(found) - 1)
    return lines


def journaled_readers(folder: Path) -> int:
    """The readers whose outcomes the journals in ``folder`` hold."""
    readers = 0
    for path in folder.glob("*.journal"):
        lines = [x for x in path.read_bytes().replace(b"\0", b"").splitlines() if x.strip()]
        for line in lines[1:]:
            with contextlib.suppress(ValueError):  # a line being written
                item = json.loads(line)
                readers += sum(len(ids) for _, ids in item[DeliveryStatus.SENT])
                readers += len(item[DeliveryStatus.FAILED]) + len(item[DeliveryStatus.SKIPPED])
    return readers


def counts(config_path: Path, *, stored: bool = True) -> dict[DeliveryStatus, int]:
    """The ledger's counts of the day's edition (``stored``: it must be there already)."""
    store = Store.open(load_config(config_path).database_url)
    try:
        ref = store.editions.edition_ref(NOW.date())
        assert ref is not None or not stored
        return {} if ref is None else store.ledger.delivery_counts(ref.id)
    finally:
        store.close()


def fault_after(server: SendgridServer, requests: int, fault: Callable[[], None]) -> None:
    """Cause ``fault`` once the provider has accepted ``requests`` requests, before it
    answers the last of them: that request's outcome meets the fault."""
    server.on_accept = lambda n: fault() if n == requests else None


@sqlite_only
@pytest.mark.slow  # in `pytest -m slow` (.ci/run runs it): a heavy real run
def test_a_disk_that_fills_mid_send_and_frees_loses_nobody(
    tmp_path: Path, server: SendgridServer
) -> None:
    path = sendgrid_config(tmp_path, server, READERS)
    process = start_send(path, "--no-collect")
    fault_after(server, 2, lambda: fill_disk(process.pid))
    _wait_for(lambda: journaled(tmp_path / "journal") > 0)  # held, and kept on disk
    accepted = server.accepted_count
    free_disk(process.pid)
    out = finish(process)
    assert accepted <= 3  # nothing new started while the database was down
    assert "60 readers sent" in out
    assert len(server.recipients) == READERS and set(server.recipients.values()) == {1}
    assert counts(path) == {DeliveryStatus.SENT: READERS}
    assert not list((tmp_path / "journal").glob("*.journal"))  # nothing left to apply


@pytest.mark.slow
@sqlite_only
def test_a_disk_that_stays_full_stops_with_one_error_and_the_rerun_sends_each_once(
    tmp_path: Path, server: SendgridServer
) -> None:
    path = sendgrid_config(tmp_path, server, READERS, database_wait_seconds=1)
    process = start_send(path, "--no-collect")
    fault_after(server, 2, lambda: fill_disk(process.pid))
    _, err = process.communicate(timeout=60)
    text = err.decode()
    assert process.returncode != 0 and "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    # SQLite names a write past the limit an I/O error (a full disk: "disk is full")
    assert len(errors) == 1 and "the database cannot be used just now" in errors[0], text
    assert "disk I/O error" in errors[0] or "disk is full" in errors[0]
    assert "outcomes are kept in" in errors[0] and "Hint:" in text
    assert len(text.splitlines()) < 12, text  # a few lines, not a traceback per batch
    kept = journaled(tmp_path / "journal")
    assert kept >= 1
    rerun_sends_the_rest_once(path, server, READERS)  # the journal first, then the rest
    assert counts(path) == {DeliveryStatus.SENT: READERS}
    assert not list((tmp_path / "journal").glob("*.journal"))


@sqlite_only
@pytest.mark.slow  # in `pytest -m slow` (.ci/run runs it): a heavy real run
def test_a_send_killed_while_the_disk_is_full_is_finished_once_by_the_next_run(
    tmp_path: Path, server: SendgridServer
) -> None:
    path = sendgrid_config(tmp_path, server, READERS)
    process = start_send(path, "--no-collect")
    fault_after(server, 2, lambda: fill_disk(process.pid))

    def accounted() -> bool:
        """Every reader the provider accepted is in the ledger or the journal: the kill
        comes once nothing is in flight (a reader in flight at a kill may be sent twice)."""
        held = journaled_readers(tmp_path / "journal")
        recorded = counts(path, stored=False).get(DeliveryStatus.SENT, 0)
        return held > 0 and recorded + held >= len(server.recipients)

    _wait_for(accounted)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    rerun_sends_the_rest_once(path, server, READERS)
    assert counts(path) == {DeliveryStatus.SENT: READERS}


def _admin(database: str) -> tuple[Callable[[str], None], str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(database).database
    admin = create_engine(TEST_DATABASE, isolation_level="AUTOCOMMIT")

    def run(sql: str) -> None:
        with admin.connect() as conn:
            conn.execute(text(sql))

    return run, str(name)


def _drop_connections(run: Callable[[str], None], name: str) -> None:
    run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


@postgres_only
def test_a_database_turned_read_only_mid_send_loses_nobody(
    tmp_path: Path, server: SendgridServer, database: str
) -> None:
    run, name = _admin(database)

    def read_only(on: bool) -> None:
        run(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}')
        _drop_connections(run, name)  # new connections get the setting

    path = sendgrid_config(tmp_path, server, READERS)
    process = start_send(path, "--no-collect")
    fault_after(server, 2, lambda: read_only(True))
    _wait_for(lambda: journaled(tmp_path / "journal") > 0)
    read_only(False)
    finish(process)
    assert len(server.recipients) == READERS and set(server.recipients.values()) == {1}
    assert counts(path) == {DeliveryStatus.SENT: READERS}


@postgres_only
def test_lost_connections_mid_send_lose_nobody(
    tmp_path: Path, server: SendgridServer, database: str
) -> None:
    run, name = _admin(database)
    path = sendgrid_config(tmp_path, server, READERS)
    process = start_send(path, "--no-collect")
    server.on_accept = lambda n: _drop_connections(run, name) if n in (1, 3, 5) else None
    finish(process)
    assert len(server.recipients) == READERS and set(server.recipients.values()) == {1}
    assert counts(path) == {DeliveryStatus.SENT: READERS}


COMMANDS = [
    ["status"],
    ["stories"],
    ["subscribers", "list"],
    ["subscribers", "add", "ana@example.com"],
    ["send", "--no-collect"],
    ["preview", "--no-collect"],
    ["stats"],
]
CASES = [  # every command on a folder that cannot be made; two on a server that does not answer
    *[("sqlite:////dev/null/newsletter.db", command) for command in COMMANDS],
    *[("postgresql+psycopg://postgres@127.0.0.1:9/none", c) for c in (["status"], ["send"])],
]


@pytest.mark.parametrize(("database", "command"), CASES, ids=lambda c: "-".join(c)[:40])
def test_every_command_says_an_unusable_database_in_one_error(
    tmp_path: Path, database: str, command: list[str]
) -> None:
    config = write_config(tmp_path, {"feeds": [], "delivery": {"preflight": False}})
    result = CliRunner().invoke(
        cli, ["--config", str(config), *command], env={"NEWSLETTER_DATABASE_URL": database}
    )
    assert result.exit_code == 4, result.output  # the database or the file system unavailable
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Hint:" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 6


def test_debug_shows_the_traceback_behind_the_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"feeds": []})
    env = {**os.environ, "NEWSLETTER_DATABASE_URL": "sqlite:////dev/null/newsletter.db"}
    command = [sys.executable, "-m", "newsletter", "--config", str(config), "--debug", "status"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "Error: cannot use /dev/null" in done.stderr


def _journal(config: Config, owner: str) -> Journal:
    journal = Journal(
        config.journal_dir,
        owner=owner,
        database=database_key(config.database_url),
        reserve=4096,
    )
    journal.open()
    return journal


def test_a_journal_named_for_another_host_is_left_for_that_host(
    tmp_path: Path, server: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts (``NEWSLETTER_HOST``) sharing a journal folder: a send on one never takes the
    other's journal, whose sender may be running and writing it."""
    path = sendgrid_config(tmp_path, server, 5)
    config = load_config(path)
    theirs = _journal(config, f"host-b:{os.getpid()}:0badc0de")
    monkeypatch.setenv("NEWSLETTER_HOST", "host-a")
    finish(start_send(path, "--no-collect"))
    assert len(server.recipients) == 5
    assert theirs.path.is_file()


def test_a_journal_another_sender_applied_first_is_no_error(tmp_path: Path) -> None:
    """Two senders starting on one host both find a dead sender's journal: the one that
    finds it gone when it comes to delete it goes on."""
    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    journal = _journal(config, f"{host_name()}:{dead.pid}:0a0b0c0d")
    journal.keep([Outcome(NOW, {}, {424242: "refused"}, {})])

    class FirstApplier:
        """The real ledger, as seen by a sender whose twin deletes the journal meanwhile."""

        def record_deliveries(self, **outcomes: Any) -> None:
            store.ledger.record_deliveries(**outcomes)
            journal.path.unlink()  # the other sender was quicker to finish

    applied = apply_journals(
        config.journal_dir,
        FirstApplier(),
        database=database_key(config.database_url),
        alive=claim_is_alive,
    )
    assert applied == 1 and not journal.path.exists()
    store.close()


@postgres_only
@pytest.mark.parametrize("part", ["database", "username"])
def test_a_postgresql_database_or_role_that_does_not_exist_is_a_configuration_error(
    tmp_path: Path, part: str
) -> None:
    """Not "cannot be used just now ... check that its disk has room": a name to correct."""
    from sqlalchemy.engine import make_url

    base = make_url(TEST_DATABASE)
    url = base.set(database="no_such_name_7f3a") if part == "database" else base
    url = url.set(username="no_such_name_7f3a") if part == "username" else url
    config = write_config(tmp_path, {"feeds": []})
    env = {"NEWSLETTER_DATABASE_URL": url.render_as_string(hide_password=False)}
    result = CliRunner().invoke(cli, ["--config", str(config), "status"], env=env)
    assert result.exit_code == 3, result.output
    error, _, hint = result.output.partition("Hint:")
    assert "does not exist" in error and "no_such_name_7f3a" in error
    assert "NEWSLETTER_DATABASE_URL" in hint and "disk" not in hint
