"""Readers from the shell: add, import, export, remove."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.store import Store
from tests.conftest import NOW, write_config

ENV = {"NEWSLETTER_NOW": NOW.isoformat()}


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_import_reports_bad_lines_updates_and_never_resubscribes(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    csv_file = tmp_path / "readers.csv"
    csv_file.write_bytes(
        "\ufeffemail,name,sectors\n"
        "ana@example.com,Ana Ruiz,oil-gas;evs-battery\n"
        "BO@Example.com,Bo,\n"
        "not-an-address,Nobody,\n"
        "cy@example.com,Cy,crypto\n"
        "\n"
        "ana@example.com,Ana again,\n"
        'dee@example.com,"Dee, Jr.",ai-semiconductors\n'.encode()
    )
    code, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    assert code == 0
    assert "line 4: 'not-an-address' is not a valid email address" in stdout
    assert "line 5: unknown sector 'crypto'" in stdout
    assert "line 7: ana@example.com appears twice in the file" in stdout
    assert "3 added, 0 updated, 0 unchanged, 0 skipped, 3 rejected" in stdout
    code, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    assert "0 added, 0 updated, 3 unchanged, 0 skipped, 3 rejected" in stdout  # twice: no change

    store = Store.open(load_config(config_path).database_url)
    ana = store.subscriber_by_email("ana@example.com")
    assert ana is not None and ana.sectors == ("oil-gas", "evs-battery") and ana.name == "Ana Ruiz"
    assert [kind for kind, *_ in store.events_of(ana.id)] == ["import"]
    store.set_subscriber_status("bo@example.com", "unsubscribed", now=NOW)
    csv_file.write_text(
        "bo@example.com,Bo,oil-gas\ndee@example.com,Dee,oil-gas\n", encoding="utf-8"
    )
    code, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    assert "line 1: bo@example.com unsubscribed; not re-subscribed" in stdout
    assert "0 added, 1 updated, 0 unchanged, 1 skipped, 0 rejected" in stdout
    bo = store.subscriber_by_email("bo@example.com")
    assert bo is not None and bo.status == "unsubscribed" and bo.sectors == ()


def test_remove_erases_and_suppresses(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    assert run(config_path, "subscribers", "add", "ana@example.com", "--name", "Ana")[0] == 0
    code, stdout, _ = run(config_path, "subscribers", "remove", "ANA@example.com")
    assert code == 0 and "Erased ana@example.com" in stdout
    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    assert store.subscriber_by_email("ana@example.com") is None
    assert store.is_suppressed("ana@example.com")
    csv_file = tmp_path / "again.csv"
    csv_file.write_text("ana@example.com,Ana,\n", encoding="utf-8")
    _, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    assert "line 1: ana@example.com was erased; it is never imported again" in stdout
    code, _, stderr = run(config_path, "subscribers", "add", "ana@example.com")
    assert code == 1 and "was removed before and cannot be added again" in stderr


def test_export_and_list_by_status(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    run(
        config_path,
        "subscribers",
        "add",
        "ana@example.com",
        "--name",
        "Ana",
        "--sectors",
        "oil-gas,evs-battery",
    )
    run(config_path, "subscribers", "add", "bo@example.com", "--pending")
    code, stdout, _ = run(config_path, "subscribers", "export")
    assert code == 0
    assert stdout.splitlines() == [
        "email,name,sectors,status",
        "ana@example.com,Ana,oil-gas evs-battery,confirmed",
        "bo@example.com,,,pending",
    ]
    _, stdout, _ = run(config_path, "subscribers", "list", "--status", "pending")
    assert "bo@example.com" in stdout and "ana@example.com" not in stdout


def test_erasure_leaves_only_a_keyed_hash(tmp_path: Path) -> None:
    import hashlib
    import sqlite3

    config_path = write_config(tmp_path, {"feeds": []})
    config = load_config(config_path)
    assert run(config_path, "subscribers", "add", "ana@example.com", "--name", "Ana")[0] == 0
    assert run(config_path, "subscribers", "add", "bo@example.com")[0] == 0
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    ana = store.subscriber_by_email("ana@example.com")
    assert ana is not None
    copy = config.outbox_dir / "2026-11-25" / f"{ana.id:08d}.eml"  # as the outbox names it
    copy.parent.mkdir(parents=True)
    copy.write_text("To: Ana <ana@example.com>\n\nhello\n")
    store.close()
    code, _, _ = run(config_path, "subscribers", "remove", "ana@example.com")
    assert code == 0 and not copy.exists()
    with sqlite3.connect(tmp_path / "newsletter.db") as db:
        hashes = [row[0] for row in db.execute("SELECT email_hash FROM suppressions")]
        events = list(db.execute("SELECT email_hash, source, details FROM subscriber_events"))
    guess = hashlib.sha256(b"ana@example.com").hexdigest()
    assert len(hashes) == 1 and hashes[0] != guess  # a guessed address does not match
    assert all(guess not in row and hashes[0] not in row for row in events)
    assert not any("ana" in str(row).lower() for row in events)
    assert (tmp_path / "privacy.key").is_file()
