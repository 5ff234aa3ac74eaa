"""The reader list as CSV: ``import_csv`` and ``export_csv``, both streaming.

An import reads the file a chunk of rows at a time (``CHUNK`` rows): each chunk's rows are
checked, looked up in the store by address, and written in one transaction, so memory does not
grow with the file and an import stopped midway has kept every chunk before; running it again
changes nothing twice. Known readers are updated, never duplicated; nobody who unsubscribed or
was erased comes back; every bad line is reported with its number and reason. Addresses seen
earlier in the file are remembered as 8-byte hashes (a sorted numpy array), so a repeated line
is caught at any distance for a few megabytes per million rows. One chunk is written on a
second thread while the next is read and checked.

An export streams readers from the store in id order and writes them as they come.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from newsletter.errors import SubscriberError
from newsletter.models import SubscriberStatus
from newsletter.records import NewReader, ReaderChange
from newsletter.store import Store
from newsletter.store.consent import email_hash
from newsletter.subscriptions import clean_name, new_tokens, normalise_email

MAX_CELL = 1_000  # a CSV field longer than this is refused (an address is at most 254)
FORMULA_STARTS = frozenset("=+-@\t\r")  # cells a spreadsheet would run as a formula
CHUNK = 10_000  # rows checked and written together
HEADER_WORDS = frozenset({"email", "e-mail", "address"})

Progress = Callable[[int, int], None]  # (bytes read, bytes in the file)


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # suppressed or unsubscribed


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    email: str
    name: str
    sectors: tuple[str, ...]


class _Seen:
    """Addresses met so far in the file, as 64-bit hashes in one sorted array."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)

    def first_times(self, emails: Sequence[str]) -> list[bool]:
        """For each address of a chunk, in order: whether it is met for the first time."""
        keys = np.fromiter(
            (
                int.from_bytes(hashlib.blake2b(e.encode(), digest_size=8).digest(), "big")
                for e in emails
            ),
            dtype=np.uint64,
            count=len(emails),
        )
        at = np.searchsorted(self._keys, keys)
        before = np.zeros(len(keys), dtype=bool)
        inside = at < len(self._keys)
        before[inside] = self._keys[at[inside]] == keys[inside]
        out = []
        mine: set[int] = set()
        for key, old in zip(keys.tolist(), before.tolist(), strict=True):
            out.append(not old and key not in mine)
            mine.add(key)
        fresh = np.sort(keys[np.array(out, dtype=bool)])
        # merged in place of a full re-sort: one copy of the array per chunk
        self._keys = np.insert(self._keys, np.searchsorted(self._keys, fresh), fresh)
        return out


def _check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8 before anything is written (a streaming pass)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise SubscriberError(
                    f"{path}: not UTF-8 text ({exc.reason} at byte {done + exc.start})",
                    hint="Save the file as UTF-8 CSV.",
                ) from None
            done += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise SubscriberError(
                f"{path}: not UTF-8 text ({exc.reason} at the end)",
                hint="Save the file as UTF-8 CSV.",
            ) from None


def import_csv(
    store: Store,
    path: Path,
    *,
    known_sectors: Sequence[str],
    now: datetime,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK,
) -> ImportReport:
    """Import ``email,name,sectors`` rows (UTF-8, with or without BOM; sectors split by ``;``
    or spaces), a chunk at a time; see the module's docstring."""
    _check_utf8(path)
    report = ImportReport()
    suppressed = store.suppressed_hashes()
    seen = _Seen()
    total = path.stat().st_size
    source = f"import {path.name}"
    # the file is read and checked here while the chunk before is written on a thread of its
    # own (the database driver lets go of the interpreter while it works): the chunks' addresses
    # are distinct (``seen``), so a chunk's lookups never depend on the write before it
    with path.open("rb") as raw, ThreadPoolExecutor(1, thread_name_prefix="import") as writer:
        # the bytes read so far, for the progress bar (the text layer reads a little ahead)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        writing: Future[None] | None = None
        rows = _rows(text, set(known_sectors), report)
        while True:
            chunk = list(itertools.islice(rows, chunk_rows))
            keep = _checked(store, chunk, report, seen, suppressed)
            if writing is not None:
                writing.result()  # the one before is written (or its error is raised here)
                if progress is not None:
                    progress(min(raw.tell(), total), total)
            if not chunk:
                break
            writing = writer.submit(_write, store, keep, report, now=now, source=source)
    report.rejected.sort()
    report.skipped.sort()
    if progress is not None:
        progress(total, total)
    return report


def _rows(text: TextIO, known: set[str], report: ImportReport) -> Iterator[_Row]:
    """The file's readable, valid rows; the others go to ``report.rejected``."""
    reader = csv.reader(text)
    first = True
    cells: dict[str, tuple[str, ...]] = {}  # a sectors cell → its sectors (few distinct cells)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field past csv's own limit, a stray quote, a NUL...
            report.rejected.append((reader.line_num, f"not a readable CSV line ({exc})"))
            continue
        number = reader.line_num
        if not row or (not row[0].strip() and all(not cell.strip() for cell in row)):
            continue
        if first and row[0].strip().lower() in HEADER_WORDS:
            first = False
            continue  # the header
        first = False
        try:
            if max(map(len, row)) > MAX_CELL:
                raise SubscriberError(f"a field is longer than {MAX_CELL:,} characters")
            email = normalise_email(row[0])
            name = clean_name(row[1] if len(row) > 1 else "")
            cell = row[2] if len(row) > 2 else ""
            sectors = cells.get(cell)
            if sectors is None:
                sectors = _sectors(cell, known)
                if len(cells) < 4096:
                    cells[cell] = sectors
        except SubscriberError as exc:
            report.rejected.append((number, exc.message))
            continue
        yield _Row(number, email, name, sectors)


def _checked(
    store: Store,
    chunk: Sequence[_Row],
    report: ImportReport,
    seen: _Seen,
    suppressed: set[str],
) -> list[_Row]:
    """A chunk's rows without repeats of earlier addresses and erased ones (reported)."""
    keep: list[_Row] = []
    if not chunk:
        return keep
    for row, first in zip(chunk, seen.first_times([r.email for r in chunk]), strict=True):
        if not first:
            report.rejected.append((row.number, f"{row.email} appears twice in the file"))
        elif suppressed and (
            store.address_key(row.email) in suppressed or email_hash(row.email) in suppressed
        ):
            report.skipped.append(
                (row.number, f"{row.email} was erased; it is never imported again")
            )
        else:
            keep.append(row)
    return keep


def _sectors(cell: str, known: set[str]) -> tuple[str, ...]:
    """The sectors of a cell (split by ``;``, ``,`` or spaces, each once), or why not."""
    chosen = cell.replace(";", " ").replace(",", " ").split()
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise SubscriberError(f"unknown sector {unknown[0]!r}")
    return tuple(dict.fromkeys(chosen))


def _write(
    store: Store, chunk: Sequence[_Row], report: ImportReport, *, now: datetime, source: str
) -> None:
    """One chunk: new readers inserted, changed ones updated, with their consent events."""
    if not chunk:
        return
    known = store.subscriber_index([row.email for row in chunk])
    fresh = [row for row in chunk if row.email not in known]
    new = [
        NewReader(row.email, row.name, row.sectors, token)
        for row, token in zip(fresh, new_tokens(len(fresh)), strict=True)
    ]
    changed: list[ReaderChange] = []
    for row in chunk:
        old = known.get(row.email)
        if old is None:
            continue
        if old.status == SubscriberStatus.UNSUBSCRIBED:
            report.skipped.append((row.number, f"{row.email} unsubscribed; not re-subscribed"))
        elif (old.name, old.sectors) == (row.name, row.sectors):
            report.unchanged += 1
        else:
            changed.append(ReaderChange(old.id, row.name, row.sectors))
    store.bulk_import(new, changed, now=now, source=source)  # readers and consent together
    report.added += len(new)
    report.updated += len(changed)


def export_csv(store: Store, out: TextIO, *, status: str | None = None, page: int = CHUNK) -> int:
    """Write ``email,name,sectors,status`` rows as they stream from the store; how many."""
    writer = csv.writer(out)
    writer.writerow(["email", "name", "sectors", "status"])
    count = 0
    for r in store.iter_subscribers(status=status, page=page):
        writer.writerow([_cell(r.email), _cell(r.name), " ".join(r.sectors), r.status])
        count += 1
    return count


def _cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading '."""
    return "'" + value if value[:1] in FORMULA_STARTS else value
