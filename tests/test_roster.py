"""The CSV import and export of ``roster.py``: one physical line is one row, export → import
gives the same readers back, and a bad line (quote, length, encoding) is reported alone."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.errors import SubscriberError
from newsletter.models import SubscriberStatus
from newsletter.readers.csvlines import read_lines
from newsletter.readers.roster import FORMULA_STARTS, import_csv
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from tests.conftest import NOW, ROOT, write_config

ENV = {"NEWSLETTER_NOW": NOW.isoformat()}


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], env=ENV)
    return result.exit_code, result.stdout


def newsletter(config: Path, *args: str, env: dict[str, str]) -> bytes:
    """The real command in a process of its own; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(config), *args],
        env=env,
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


STATUSES = list(SubscriberStatus)


def readers(store: Store) -> list[tuple[str, str, tuple[str, ...], str]]:
    return [(r.email, r.name, r.sectors, r.status) for r in store.readers.iter_subscribers()]


def test_a_stray_quote_is_reported_on_its_own_line_and_every_other_line_is_imported(
    tmp_path: Path,
) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    path = tmp_path / "readers.csv"
    lines = [
        "email,name,sectors",
        "ana@example.com,Ana,oil-gas",
        'a@x.org,"Unclosed,oil-gas',  # line 3: the quote is never closed
        'bo@example.com,"Bo, Jr.",evs-battery',
        "cy@example.com,Cy,",
        'ed@example.com,"Ed',  # line 6: a name cut by a line break...
        'Smith",oil-gas',  # line 7: ...whose second half is a line of its own
        'dee@example.com,"Dee ""D"" Ruiz",',
    ]
    path.write_bytes("\r\n".join(lines).encode() + b"\r\n")
    code, stdout = run(config_path, "subscribers", "import", str(path))
    assert code == 1  # every good line imported; the bad ones to fix
    reported = [line for line in stdout.splitlines() if line.startswith("line ")]
    assert len(reported) == 3
    assert reported[0].startswith("line 3: an unclosed quote")
    assert reported[1].startswith("line 6: an unclosed quote")
    assert reported[2].startswith("line 7: 'Smith\"' is not a valid email address")
    assert "4 added, 0 updated, 0 unchanged, 0 skipped, 3 rejected" in stdout
    store = Store.open(load_config(config_path).database_url)
    try:
        assert [(email, name) for email, name, _, _ in readers(store)] == [
            ("ana@example.com", "Ana"),
            ("bo@example.com", "Bo, Jr."),
            ("cy@example.com", "Cy"),
            ("dee@example.com", 'Dee "D" Ruiz'),
        ]
    finally:
        store.close()


def test_a_huge_line_is_reported_once_without_being_held_in_memory(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {}))
    path = tmp_path / "readers.csv"
    good = [f"r{n}@example.com,Reader {n},oil-gas\n".encode() for n in range(9)]
    with path.open("wb") as handle:
        handle.write(b"email,name,sectors\n" + b"".join(good[:4]))
        handle.write(b'huge@example.com,"')  # line 6: 40 MB on one line
        for _ in range(40):
            handle.write(b"x" * (1 << 20))
        handle.write(b'",oil-gas\n' + b"".join(good[4:]))
    store = Store.open(config.database_url)
    tracemalloc.start()
    try:
        report = import_csv(store, path, known_sectors=config.sector_slugs, now=NOW)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        store.close()
    assert report.added == 9 and len(report.rejected) == 1
    number, reason = report.rejected[0]
    assert number == 6 and reason.startswith("the line is longer than")
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MB held for a 40 MB line"


@pytest.mark.slow
def test_export_then_import_into_a_fresh_database_gives_the_same_readers(tmp_path: Path) -> None:
    config_path = write_config(tmp_path / "first", {})
    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    leads = sorted(FORMULA_STARTS)
    addresses = [f"{c}tag{i}@f7.org" for i, c in enumerate(leads)]
    addresses += [f"'{c}quoted{i}@f7.org" for i, c in enumerate(leads)] + ["'tis@f7.org"]
    names = [f"{c}Name {i}" for i, c in enumerate(leads)]
    names += [f"'{c}Quoted {i}" for i, c in enumerate(leads)] + ["'Tis", "O'Brien", "'", "Plain"]
    people = [(a, "Reader") for a in addresses] + [(f"n{i}@f7.org", n) for i, n in enumerate(names)]
    refused = []
    try:
        for n, (address, name) in enumerate(people):
            try:
                add_subscriber(
                    store,
                    address,
                    name=name,
                    sectors=config.sector_slugs[n % 3 : n % 3 + 2],
                    known_sectors=config.sector_slugs,
                    status=STATUSES[n % len(STATUSES)],  # an unsubscribed one stays so
                    now=NOW,
                )
            except SubscriberError:
                refused.append((address, name))
        before = readers(store)
    finally:
        store.close()
    # what the store can hold: no address starts with @ or holds a tab or a line break, a tab
    # or line break before an address is trimmed, one in a name becomes a space (item 7)
    assert [a for a, _ in refused if a in addresses] == [
        "@tag5@f7.org",
        "'\tquoted0@f7.org",
        "'\rquoted1@f7.org",
        "'@quoted5@f7.org",
    ]
    assert [n for _, n in refused if n in names] == []
    assert {e[:2] for e, *_ in before} >= {"+t", "-t", "=t", "'+", "'-", "'=", "'t"}
    assert {status for *_, status in before} == set(SubscriberStatus)
    assert {n[:2] for _, n, *_ in before} >= {"+N", "-N", "=N", "@N", "'+", "'-", "'=", "'@"}
    env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_DATABASE_URL"}
    env |= ENV
    exported = newsletter(config_path, "subscribers", "export", env={**os.environ, **ENV})
    assert b"\n'+tag" in exported and b",'=Name" in exported and b"\n''=quoted" in exported
    path = tmp_path / "readers.csv"
    path.write_bytes(exported)
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"  # never the first store, on any database
    fresh_path = write_config(tmp_path / "second", {"database": fresh_url})
    out = newsletter(fresh_path, "subscribers", "import", str(path), env=env)
    assert f"{len(before)} added, 0 updated".encode() in out and b"0 rejected" in out
    store = Store.open(fresh_url, privacy_key=load_config(fresh_path).privacy_key())
    try:
        assert readers(store) == before
    finally:
        store.close()


def test_a_tab_after_the_text_mark_is_read_as_the_spreadsheet_wrote_it(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {}))
    path = tmp_path / "readers.csv"
    path.write_text(
        "ana@example.com,'\tAna,\n'-bo@example.com,'@Bo,\ncy@example.com,'Tis Cy,\n",
        encoding="utf-8",
    )
    store = Store.open(config.database_url)
    try:
        report = import_csv(store, path, known_sectors=config.sector_slugs, now=NOW)
        assert report.added == 3 and not report.rejected
        assert [(r.email, r.name) for r in store.readers.iter_subscribers()] == [
            ("ana@example.com", "Ana"),
            ("-bo@example.com", "@Bo"),
            ("cy@example.com", "'Tis Cy"),
        ]
    finally:
        store.close()


def test_a_line_that_is_not_utf8_is_reported_with_its_byte_offset_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    path = tmp_path / "readers.csv"
    body = b"\xef\xbb\xbfemail,name,sectors\n"  # UTF-8 with a BOM...
    body += "".join(f"r{n}@example.com,Reader {n},\n" for n in range(5)).encode()
    body += "zoe@example.com,Zoë,\n".encode("latin-1")  # ...but line 7 is Latin-1
    body += "jose@example.com,José,\n".encode()
    body += b"cut@example.com,Cut \xc3\n"  # line 9 ends inside a character
    body += b"last@example.com,Last,"  # no line break at the end
    path.write_bytes(body)
    code, stdout = run(config_path, "subscribers", "import", str(path))
    assert code == 1  # every good line imported; the bad one to fix
    zoe, cut = body.index(b"\xeb"), body.index(b"\xc3\n")
    assert (
        f"line 7: not UTF-8 text (invalid continuation byte at byte offset {zoe} of the file)"
        in stdout
    )
    assert f"line 9: not UTF-8 text (unexpected end of data at byte offset {cut} " in stdout
    assert "7 added, 0 updated, 0 unchanged, 0 skipped, 2 rejected" in stdout
    store = Store.open(load_config(config_path).database_url)
    try:
        names = {email: name for email, name, _, _ in readers(store)}
        assert names["jose@example.com"] == "José" and names["last@example.com"] == "Last"
        assert "zoe@example.com" not in names and len(names) == 7
    finally:
        store.close()


def _editor_lines(data: bytes, limit: int) -> list[tuple[int, int, bytes | None]]:
    """The reference: the whole file in memory, split where bytes.splitlines splits."""
    out: list[tuple[int, int, bytes | None]] = []
    at = 0
    for number, piece in enumerate(data.splitlines(keepends=True), 1):
        body = piece.rstrip(b"\r\n")
        out.append((number, at, body if len(body) <= limit else None))
        at += len(piece)
    return out


def test_lines_are_split_numbered_and_capped_alike_at_any_block_size() -> None:
    rng = random.Random(7)
    for _ in range(3000):  # line ends and long lines falling on every block boundary
        data = bytes(rng.choice(b"ab\r\n\xc3") for _ in range(rng.randrange(40)))
        limit, block = rng.randrange(8), rng.randrange(1, 9)
        got = list(read_lines(io.BytesIO(data), limit=limit, block=block))
        assert got == _editor_lines(data, limit), (data, limit, block)


def test_a_file_with_lone_cr_line_ends_is_read_line_by_line(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {}))
    path = tmp_path / "mac.csv"
    path.write_bytes(b"email,name\rana@example.com,Ana\rbad,Bad\r\rbo@example.com,Bo\r")
    store = Store.open(config.database_url)
    try:
        report = import_csv(store, path, known_sectors=config.sector_slugs, now=NOW)
        assert report.added == 2 and [n for n, _ in report.rejected] == [3]
    finally:
        store.close()


def test_a_utf16_file_is_refused_whole_before_anything_is_written(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {}))
    path = tmp_path / "unicode.csv"
    path.write_text("email,name\nana@example.com,Ana\n", encoding="utf-16")
    store = Store.open(config.database_url)
    try:
        with pytest.raises(SubscriberError, match="UTF-16") as caught:
            import_csv(store, path, known_sectors=config.sector_slugs, now=NOW)
        assert caught.value.hint is not None and "UTF-8" in caught.value.hint
        assert list(store.readers.iter_subscribers()) == []
    finally:
        store.close()


@pytest.mark.parametrize("comma", [",", ";"])
def test_a_header_names_the_columns_in_any_order(tmp_path: Path, comma: str) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    csv_file = tmp_path / "readers.csv"
    rows = [
        ["Name", "Company", "E-mail", "Sectors"],
        ["Ana Ruiz", "Harbourline", "ana@example.com", "oil-gas evs-battery"],
        ["Bo", "", "bo@example.com", ""],
    ]
    csv_file.write_text("".join(comma.join(row) + "\n" for row in rows), encoding="utf-8")
    code, stdout = run(config_path, "subscribers", "import", str(csv_file))
    assert code == 0, stdout
    assert "line 1: the column 'Company' is not one of ours and was left out" in stdout
    assert "2 added, 0 updated, 0 unchanged, 0 skipped, 0 rejected" in stdout
    store = Store.open(load_config(config_path).database_url)
    assert readers(store) == [
        ("ana@example.com", "Ana Ruiz", ("oil-gas", "evs-battery"), SubscriberStatus.CONFIRMED),
        ("bo@example.com", "Bo", (), SubscriberStatus.CONFIRMED),
    ]
