"""Readers from the shell: add, import, export, remove."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import sqlalchemy.exc
from click.testing import CliRunner
from email_validator import EmailNotValidError, validate_email

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.errors import SubscriberError
from newsletter.models import SubscriberStatus, SuppressionReason
from newsletter.readers.export import export_csv
from newsletter.readers.roster import import_csv
from newsletter.readers.subscriptions import normalise_email
from newsletter.store import Store
from newsletter.store.consent import keyed_hash, keyed_hashes
from tests.conftest import NOW, write_config

ENV = {"NEWSLETTER_NOW": NOW.isoformat()}

HEADER = "email,name,sectors,status,timezone,hour,frequency,weekday,watchlist"


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
    code, stdout, stderr = run(config_path, "subscribers", "import", str(csv_file))
    assert code == 1  # imported, with lines to fix: a script can tell
    assert "Error: 3 lines were rejected" in stderr
    assert "line 4: 'not-an-address' is not a valid email address" in stdout
    assert "line 5: unknown sector 'crypto'" in stdout
    assert "line 7: ana@example.com appears twice in the file" in stdout
    assert "3 added, 0 updated, 0 unchanged, 0 skipped, 3 rejected" in stdout
    code, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    assert code == 1
    assert "0 added, 0 updated, 3 unchanged, 0 skipped, 3 rejected" in stdout  # twice: no change

    store = Store.open(load_config(config_path).database_url)
    ana = store.readers.subscriber_by_email("ana@example.com")
    assert ana is not None and ana.sectors == ("oil-gas", "evs-battery") and ana.name == "Ana Ruiz"
    assert [e.kind for e in store.readers.events_of(ana.id)] == ["import"]
    left = store.readers.subscriber_by_email("bo@example.com")
    assert left is not None
    store.readers.update_subscriber(left.id, now=NOW, status=SubscriberStatus.UNSUBSCRIBED)
    csv_file.write_text(
        "bo@example.com,Bo,oil-gas\ndee@example.com,Dee,oil-gas\n", encoding="utf-8"
    )
    code, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    assert code == 0  # a skipped line is no mistake
    assert "line 1: bo@example.com unsubscribed; not re-subscribed" in stdout
    assert "0 added, 1 updated, 0 unchanged, 1 skipped, 0 rejected" in stdout
    bo = store.readers.subscriber_by_email("bo@example.com")
    assert bo is not None and bo.status == SubscriberStatus.UNSUBSCRIBED and bo.sectors == ()


def test_remove_erases_and_suppresses(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    assert run(config_path, "subscribers", "add", "ana@example.com", "--name", "Ana")[0] == 0
    code, stdout, _ = run(config_path, "subscribers", "remove", "ANA@example.com")
    assert code == 0 and "Erased ana@example.com" in stdout
    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    assert store.readers.subscriber_by_email("ana@example.com") is None
    assert store.readers.is_suppressed("ana@example.com")
    csv_file = tmp_path / "again.csv"
    csv_file.write_text("ana@example.com,Ana,\n", encoding="utf-8")
    _, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    assert (
        "line 1: ana@example.com was erased (`subscribers remove`); never imported again" in stdout
    )
    code, _, stderr = run(config_path, "subscribers", "add", "ana@example.com")
    assert code == 1 and "was erased (`subscribers remove`) and cannot be added again" in stderr


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
        HEADER,
        "ana@example.com,Ana,oil-gas evs-battery,confirmed,,,daily,,",
        "bo@example.com,,,pending,,,daily,,",
    ]
    pending = SubscriberStatus.PENDING.value
    _, stdout, _ = run(config_path, "subscribers", "list", "--status", pending)
    assert "bo@example.com" in stdout and "ana@example.com" not in stdout


def test_erasure_leaves_only_a_keyed_hash(tmp_path: Path) -> None:
    import hashlib

    config_path = write_config(tmp_path, {"feeds": []})
    config = load_config(config_path)
    assert run(config_path, "subscribers", "add", "ana@example.com", "--name", "Ana")[0] == 0
    assert run(config_path, "subscribers", "add", "bo@example.com")[0] == 0
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    ana = store.readers.subscriber_by_email("ana@example.com")
    assert ana is not None
    copy = config.outbox_dir / "2026-11-25" / f"{ana.id:08d}.eml"  # as the outbox names it
    copy.parent.mkdir(parents=True)
    copy.write_text("To: Ana <ana@example.com>\n\nhello\n")
    store.close()
    code, _, _ = run(config_path, "subscribers", "remove", "ana@example.com")
    assert code == 0 and not copy.exists()
    engine = sqlalchemy.create_engine(config.database_url)
    with engine.connect() as conn:
        hashes = [
            row[0] for row in conn.execute(sqlalchemy.text("SELECT email_hash FROM suppressions"))
        ]
        events = [
            tuple(row)
            for row in conn.execute(
                sqlalchemy.text("SELECT email_hash, source, details FROM subscriber_events")
            )
        ]
    engine.dispose()
    guess = hashlib.sha256(b"ana@example.com").hexdigest()
    assert len(hashes) == 1 and hashes[0] != guess  # a guessed address does not match
    assert all(guess not in row and hashes[0] not in row for row in events)
    assert not any("ana" in str(row).lower() for row in events)
    assert (tmp_path / "privacy.key").is_file()


def test_a_machine_with_another_privacy_key_is_refused_until_given_the_same_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = f"sqlite:///{tmp_path / 'shared.db'}"  # one database, two machines' folders
    first = write_config(tmp_path / "first", {"database": shared})
    second = write_config(tmp_path / "second", {"database": shared})
    monkeypatch.delenv("NEWSLETTER_PRIVACY_KEY", raising=False)
    assert run(first, "subscribers", "add", "ana@example.com")[0] == 0
    code, out, err = run(second, "subscribers", "list")  # made a key of its own: refused
    assert code == 3 and out == ""  # a configuration to fix
    assert "this machine's privacy key is not the one the database was first used with" in err
    assert "NEWSLETTER_PRIVACY_KEY" in err
    key = (tmp_path / "first" / "privacy.key").read_text(encoding="utf-8").strip()
    assert key not in err
    monkeypatch.setenv("NEWSLETTER_PRIVACY_KEY", key)  # the first machine's key, given here
    code, out, _ = run(second, "subscribers", "list")
    assert code == 0 and "ana@example.com" in out


def test_import_and_export_stream_in_chunks(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {}))
    store = Store.open(config.database_url)
    path = tmp_path / "many.csv"
    lines = ["email,name,sectors"]
    lines += [f"r{n:03d}@example.com,Reader {n},oil-gas" for n in range(40)]
    lines += ["r002@example.com,Again,oil-gas", "bad-address,No,oil-gas"]  # far from the first
    lines += [f"r{n:03d}@example.com,Reader {n},evs-battery" for n in range(40, 50)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen: list[tuple[int, int]] = []
    report = import_csv(
        store,
        path,
        known_sectors=config.sector_slugs,
        now=NOW,
        progress=lambda done, total: seen.append((done, total)),
        chunk_rows=7,
    )
    assert report.added == 50 and not report.updated
    assert [n for n, _ in report.rejected] == [42, 43]
    assert "appears twice in the file" in report.rejected[0][1]
    assert len(seen) >= 7 and seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    again = import_csv(store, path, known_sectors=config.sector_slugs, now=NOW, chunk_rows=4)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 50)
    out = io.StringIO()
    assert export_csv(store, out, page=6) == 50
    exported = out.getvalue().splitlines()
    assert exported[0] == HEADER and len(exported) == 51
    assert len(set(exported)) == 51
    assert exported[3] == "r002@example.com,Reader 2,oil-gas,confirmed,,,daily,,"


def test_imported_readers_get_their_own_tokens_and_consent_under_their_keyed_hash(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, {}))
    store = Store.open(config.database_url)
    path = tmp_path / "many.csv"
    emails = [f"r{n:03d}@example.com" for n in range(23)] + ["ana@exämple.de"]
    path.write_text("".join(f"{e},R,oil-gas\n" for e in emails), encoding="utf-8")
    report = import_csv(store, path, known_sectors=config.sector_slugs, now=NOW, chunk_rows=10)
    assert report.added == 24
    readers = {s.email: s for s in store.readers.iter_subscribers()}
    tokens = [s.token for s in readers.values()]
    assert len(set(tokens)) == 24  # distinct, also within a chunk and across chunks
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens)
    assert {t[:8] for t in tokens} != {tokens[0][:8]}  # each chunk's shared part its own
    for email, reader in readers.items():
        assert store.readers.subscriber_by_token(reader.token).email == email  # type: ignore[union-attr]
    with store.engine.connect() as conn:
        events = conn.execute(
            sqlalchemy.text("SELECT subscriber_id, email_hash, kind, source FROM subscriber_events")
        ).all()
    assert sorted(events) == sorted(
        (r.id, store.readers.address_key(e), "import", "import many.csv")
        for e, r in readers.items()
    )


def test_keyed_hashes_of_many_addresses_are_each_address_keyed_hash() -> None:
    emails = ["a@example.com", "zoë@exämple.de", "", "x" * 300 + "@example.com"]
    for key in (b"", b"k" * 32, bytes(range(200))):  # short, usual, longer than a block
        assert keyed_hashes(key, emails) == [keyed_hash(key, e) for e in emails]


# a trigger that refuses one address, as a failing disk or constraint would, per database
REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON subscribers WHEN NEW.email = 'r017@example.com'"
        " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.email = 'r017@example.com' THEN RAISE EXCEPTION 'disk says no'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON subscribers FOR EACH ROW"
        " EXECUTE FUNCTION refuse_one()",
    ],
}

ALLOW = {"sqlite": "DROP TRIGGER refuse", "postgresql": "DROP TRIGGER refuse ON subscribers"}


def test_a_write_that_fails_midway_keeps_the_chunks_before_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, {}))
    store = Store.open(config.database_url)
    path = tmp_path / "many.csv"
    path.write_text(
        "".join(f"r{n:03d}@example.com,Reader {n},oil-gas\n" for n in range(30)), encoding="utf-8"
    )
    with store.engine.begin() as conn:  # a real failure, in the database
        for statement in REFUSE[conn.dialect.name]:
            conn.execute(sqlalchemy.text(statement))
    with pytest.raises(sqlalchemy.exc.DatabaseError, match="disk says no"):
        import_csv(store, path, known_sectors=config.sector_slugs, now=NOW, chunk_rows=5)
    kept = [s.email for s in store.readers.iter_subscribers()]
    assert kept == [f"r{n:03d}@example.com" for n in range(15)]  # the chunks before r017's
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text(ALLOW[conn.dialect.name]))
    again = import_csv(store, path, known_sectors=config.sector_slugs, now=NOW, chunk_rows=5)
    assert (again.added, again.unchanged) == (15, 15)
    assert len(list(store.readers.iter_subscribers())) == 30


def _validator_says(address: str) -> str | None:
    """email-validator's answer, and RFC 5321's 64 characters before the @ (which it lets by
    and the mail providers refuse)."""
    if len(address.strip().rsplit("@", 1)[0]) > 64:
        return None
    try:
        checked = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return (checked.ascii_email or checked.normalized).lower()


def test_the_fast_path_for_plain_addresses_agrees_with_email_validator() -> None:
    with pytest.raises(SubscriberError, match="at most 64 characters"):
        normalise_email("a" * 65 + "@example.com")
    local = "a" * 64
    addresses = [
        "Ana@Example.COM",
        " ana.b+news@example.co.uk ",
        "a..b@example.com",
        ".ab@example.com",
        "ab.@example.com",
        "a_b-c@sub.example.org",
        f"{local}@example.com",
        f"{local}b@example.com",
        f"{local[:40]}.{local[:30]}@example.com",
        "ana@localhost",
        "ana@example",
        "ana@-example.com",
        "ana@exa_mple.com",
        "ana@example.com.",
        "ana@[127.0.0.1]",
        "ana@bücher.de",
        "ana@xn--bcher-kva.de",
        "ana@example.invalid",
        "ana@example.local",
        "ana@123.com",
        "ana@example.c",
        f"ana@{'d' * 64}.com",
        f"ana@{'d' * 63}.com",
        "ana@ex ample.com",
        "ana@@example.com",
        '"ana"@example.com',
    ]
    for address in addresses:
        expected = _validator_says(address)
        try:
            got: str | None = normalise_email(address)
        except SubscriberError:
            got = None
        assert got == expected, address


@pytest.mark.parametrize(
    ("option", "value", "hint"),
    [
        ("--hour", "9", "schedule.delivery_hours"),
        ("--weekly", "someday", "mon, tue, ... sun"),
        ("--timezone", "Mars/Base", "Europe/Paris"),
        ("--watch", ",".join(f"term{i}" for i in range(12)), "up to 10 names or terms"),
    ],
)
def test_a_wrong_choice_gets_the_hint_of_its_own_field(
    tmp_path: Path, option: str, value: str, hint: str
) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    code, _, stderr = run(config_path, "subscribers", "add", "ana@example.com", option, value)
    assert code == 1
    hinted = stderr.split("Hint:")[1]
    assert hint in hinted
    assert ("time zone" in hinted) == (option == "--timezone")
    assert "one per line" not in hinted


def test_a_suppressed_address_is_refused_with_its_own_reason(tmp_path: Path) -> None:
    """An address suppressed by a hard bounce or a complaint is not called erased: the
    publisher is told what happened to it."""
    config_path = write_config(tmp_path, {"feeds": []})
    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    for address in ("gone@example.com", "angry@example.com"):
        assert run(config_path, "subscribers", "add", address)[0] == 0
    store.readers.suppress("gone@example.com", SuppressionReason.HARD_BOUNCE, now=NOW)
    store.readers.suppress("angry@example.com", SuppressionReason.COMPLAINED, now=NOW)
    csv_file = tmp_path / "again.csv"
    csv_file.write_text("gone@example.com,Gone,\nangry@example.com,Angry,\n", encoding="utf-8")
    _, stdout, _ = run(config_path, "subscribers", "import", str(csv_file))
    said = " ".join(stdout.split())
    assert "line 1: gone@example.com hard-bounced" in said and "was erased" not in said
    assert "line 2: angry@example.com reported an edition as spam" in said
    code, _, stderr = run(config_path, "subscribers", "add", "angry@example.com")
    assert code == 1 and "reported an edition as spam" in stderr and "was erased" not in stderr


def _exported(config_path: Path) -> list[str]:
    return run(config_path, "subscribers", "export")[1].splitlines()[1:]


def test_an_add_refused_for_its_watchlist_writes_nothing(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    code, _, stderr = run(config_path, "subscribers", "add", "new@example.org", "--watch", "(")
    assert code == 1 and "no letter or digit" in stderr
    assert _exported(config_path) == []  # not added, half done
    run(
        config_path,
        "subscribers",
        "add",
        "old@example.org",
        "--name",
        "Old",
        "--sectors",
        "oil-gas",
    )
    before = _exported(config_path)
    code, _, _ = run(
        config_path, "subscribers", "add", "old@example.org", "--name", "New", "--watch", "x" * 61
    )
    assert code == 1 and _exported(config_path) == before  # nor updated


def test_updating_a_known_reader_changes_only_what_is_given(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    args = ["--name", "Keep Me", "--sectors", "oil-gas,mining-metals", "--timezone", "Asia/Tokyo"]
    assert run(config_path, "subscribers", "add", "keep@example.org", *args)[0] == 0
    assert run(config_path, "subscribers", "add", "keep@example.org", "--watch", "Shell")[0] == 0
    (row,) = _exported(config_path)
    assert row.startswith("keep@example.org,Keep Me,oil-gas mining-metals,")
    assert "Asia/Tokyo" in row and row.endswith(",Shell")
    assert run(config_path, "subscribers", "add", "keep@example.org", "--name", "Kept")[0] == 0
    (row,) = _exported(config_path)
    assert row.startswith("keep@example.org,Kept,oil-gas mining-metals,")


def test_a_watchlist_term_a_spreadsheet_would_run_round_trips(tmp_path: Path) -> None:
    """Export writes a cell starting like a formula ("@at") with a leading '; import takes it
    off the watchlist as it does off names: importing the export changes no reader, every
    time (each round added one more ')."""
    config = write_config(tmp_path, {"feeds": []})
    run(config, "subscribers", "add", "w@example.org", "--name", "=Eq", "--watch", "@at,-x1")
    exported = _exported(config)
    assert exported[0].startswith("w@example.org,'=Eq,") and exported[0].endswith(",'@at; -x1")
    for n in range(2):
        csv_file = tmp_path / f"round{n}.csv"
        csv_file.write_text("\n".join([HEADER, *exported]) + "\n", encoding="utf-8")
        code, stdout, _ = run(config, "subscribers", "import", str(csv_file))
        assert code == 0 and "0 updated, 1 unchanged" in stdout, stdout
        assert _exported(config) == exported
