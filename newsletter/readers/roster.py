"""The reader list as CSV: ``import_csv`` and ``export_csv``, both streaming.

A row is one physical line: no field of ours (email, name, sectors) may hold a line break, so
the file is split into lines first (``csvlines.read_lines``) and each line is decoded and parsed
on its own. A bad line costs only itself and is reported by its own number: a quote left open
(it can no longer swallow the lines after it), a line longer than ``MAX_LINE`` bytes (reported
once, never held whole in memory), bytes that are not UTF-8 (with the byte offset in the file of
the first bad byte). A BOM before the first line is skipped; a UTF-16 file is refused whole.

An import reads the file a chunk of rows at a time (``CHUNK`` rows): each chunk's rows are
checked, looked up in the store by address, and written in one transaction, so memory does not
grow with the file and an import stopped midway has kept every chunk before; running it again
changes nothing twice. Known readers are updated, never duplicated; nobody who unsubscribed or
was erased comes back; every bad line is reported with its number and reason. Addresses seen
earlier in the file are remembered as 8-byte hashes (a sorted numpy array), so a repeated line
is caught at any distance for a few megabytes per million rows. One chunk is written on a
second thread while the next is read, checked, looked up and made ready for the driver
(``Store.readers.import_batch``): the writing thread only runs its inserts and the commit.

An export (``export``) writes cells a spreadsheet would run as a formula with one more '
in front; an import takes exactly that one ' off again (``_unquoted``), so export then import
gives the same readers back. A ' before anything else (``'Tis``, ``O'Brien``) is kept as it is.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from newsletter.config.settings import ScheduleConfig
from newsletter.config.suggest import did_you_mean
from newsletter.errors import SubscriberError
from newsletter.models import Channel, Source, SubscriberStatus
from newsletter.models.readers import DEFAULT_SLOT, Slot
from newsletter.readers.columns import Header, read_header
from newsletter.readers.csvlines import Line, cells, read_lines
from newsletter.readers.subscriptions import (
    clean_name,
    new_tokens,
    normalise_email,
    suppressed_because,
)
from newsletter.readers.timing import (
    checked_frequency,
    checked_hour,
    checked_watchlist,
    checked_weekday,
    checked_zone,
)
from newsletter.records import NewReader, ReaderChange
from newsletter.store import Store
from newsletter.store.consent import email_hash
from newsletter.store.imports import ImportBatch

MAX_CELL = 1_000  # a CSV field longer than this is refused (an address is at most 254)
MAX_LINE = 64 * 1024  # bytes; a longer line is skipped (our 3 fields need < 3,000; extras too)
FORMULA_STARTS = frozenset("=+-@\t\r")  # cells a spreadsheet would run as a formula
CHUNK = 10_000  # rows checked and written together

Progress = Callable[[int, int], None]  # (bytes read, bytes in the file)


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # suppressed or unsubscribed
    notes: list[tuple[int, str]] = field(default_factory=list)  # the header's columns left out


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    email: str
    name: str
    sectors: tuple[str, ...]
    status: SubscriberStatus = SubscriberStatus.CONFIRMED
    slot: Slot | None = None  # None: the file has no such columns (a known reader's stays)
    watchlist: tuple[str, ...] | None = None


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


def import_csv(
    store: Store,
    path: Path,
    *,
    known_sectors: Sequence[str],
    now: datetime,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK,
    source: Source | None = None,
    schedule: ScheduleConfig | None = None,
) -> ImportReport:
    """Import ``email,name,sectors`` rows, one a line (UTF-8, BOM or not; sectors split by ``;``
    or spaces), optionally with the export's further columns (status, timezone, hour,
    frequency, weekday, watchlist; the hours those ``schedule`` offers), a chunk at a time;
    see the module's docstring."""
    report = ImportReport()
    schedule = schedule or ScheduleConfig()
    suppressed = store.readers.suppressed_hashes()
    seen = _Seen()
    total = path.stat().st_size
    source = source or Source(Channel.IMPORT, path.name)
    # the file is read and checked here while the chunk before is written on a thread of its
    # own (the database driver lets go of the interpreter while it works): the chunks' addresses
    # are distinct (``seen``), so a chunk's lookups never depend on the write before it
    with path.open("rb") as raw, ThreadPoolExecutor(1, thread_name_prefix="import") as writer:
        _refuse_utf16(path, raw.read(2))
        raw.seek(0)
        writing: Future[None] | None = None
        lines = read_lines(raw, limit=MAX_LINE)
        rows = _rows(lines, set(known_sectors), report, schedule)
        while True:
            chunk = list(itertools.islice(rows, chunk_rows))
            keep = _checked(store, chunk, report, seen, suppressed)
            batch = _batch(store, keep, report, now=now, source=source)
            if writing is not None:
                writing.result()  # the one before is written (or its error is raised here)
                if progress is not None:
                    progress(min(raw.tell(), total), total)
            if not chunk:
                break
            writing = writer.submit(_write, store, batch, report)
    report.rejected.sort()
    report.skipped.sort()
    if progress is not None:
        progress(total, total)
    return report


def _refuse_utf16(path: Path, start: bytes) -> None:
    """Refuse a UTF-16 file whole (a spreadsheet's "Unicode text"): no line of it is UTF-8."""
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise SubscriberError(
            f"{path}: the file is UTF-16 text, not UTF-8",
            hint='Save it as UTF-8 CSV ("CSV UTF-8" in a spreadsheet) and import it again.',
        )


def _rows(
    lines: Iterator[Line], known: set[str], report: ImportReport, schedule: ScheduleConfig
) -> Iterator[_Row]:
    """The file's readable, valid rows; the others go to ``report.rejected``. A header names
    the columns (``columns``); its cells may be split by ; instead of commas."""
    first, delimiter, header = True, ",", Header(None, ())
    sector_cells: dict[str, tuple[str, ...]] = {}  # a cell → its sectors (few distinct cells)
    for number, offset, data in lines:
        try:
            row = _line_cells(number, offset, data, delimiter)
        except SubscriberError as exc:
            report.rejected.append((number, exc.message))
            continue
        if not row or (not row[0].strip() and all(not cell.strip() for cell in row)):
            continue
        if first:
            first = False
            found = read_header(row[0].split(";")) if len(row) == 1 and ";" in row[0] else None
            delimiter = ";" if found is not None else ","
            found = found or read_header(row)
            if found is not None:
                header = found
                report.notes += [(number, _left_out(name)) for name in found.left_out]
                continue
        if header.positions is not None:  # a header's order, not ours
            row = header.ours(row)
        try:
            if max(map(len, row)) > MAX_CELL:
                raise SubscriberError(f"a field is longer than {MAX_CELL:,} characters")
            email, name = row[0], row[1] if len(row) > 1 else ""
            if email[:1] == "'" or name[:1] == "'":  # (rare: a look before a call)
                email, name = _unquoted(email), _unquoted(name)
            email, name = normalise_email(email), clean_name(name)
            cell = row[2] if len(row) > 2 else ""
            sectors = sector_cells.get(cell)
            if sectors is None:
                sectors = _sectors(cell, known)
                if len(sector_cells) < 4096:
                    sector_cells[cell] = sectors
            status = _status(row[3]) if len(row) > 3 else SubscriberStatus.CONFIRMED
            slot, terms = _choices(row[4:], schedule) if len(row) > 4 else (None, None)
        except SubscriberError as exc:
            report.rejected.append((number, exc.message))
            continue
        yield _Row(number, email, name, sectors, status, slot, terms)


def _choices(cells: Sequence[str], schedule: ScheduleConfig) -> tuple[Slot, tuple[str, ...] | None]:
    """The delivery slot and watchlist of columns 5 to 9 (timezone, hour, frequency, weekday,
    watchlist: terms split by ``;``), as ``export`` writes them; the watchlist None when its
    column is absent."""
    zone, hour, often, day, terms = (*cells, "", "", "", "", "")[:5]
    try:
        slot = Slot(
            checked_zone(zone),
            checked_hour(hour, schedule),
            checked_frequency(often),
            checked_weekday(day),
        )
        # its ' before a formula start taken off, as off a name (``export`` added it)
        return slot, checked_watchlist(_unquoted(terms)) if len(cells) > 4 else None
    except ValueError as exc:
        raise SubscriberError(str(exc)) from None


def _status(cell: str) -> SubscriberStatus:
    """A new reader's status from the file's fourth column (as ``export`` writes it): empty
    means confirmed; an unsubscribed or bounced reader stays so, never becomes confirmed."""
    text = cell.strip().lower()
    if not text:
        return SubscriberStatus.CONFIRMED
    try:
        return SubscriberStatus(text)
    except ValueError:
        known = ", ".join(s.value for s in SubscriberStatus)
        raise SubscriberError(
            f"unknown status {cell.strip()!r}: use {known}, or leave it empty (confirmed)"
        ) from None


def _left_out(column: str) -> str:
    return f"the column {column!r} is not one of ours and was left out"


def _line_cells(number: int, offset: int, data: bytes | None, delimiter: str) -> list[str]:
    """One line's cells, or ``SubscriberError`` saying what is wrong with the line."""
    if data is None:
        raise SubscriberError(
            f"the line is longer than {MAX_LINE:,} bytes and was skipped: each row is one line "
            "of email,name,sectors, so shorten it (was a text pasted into it?)"
        )
    if number == 1 and data.startswith(codecs.BOM_UTF8):
        data, offset = data[len(codecs.BOM_UTF8) :], offset + len(codecs.BOM_UTF8)
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise SubscriberError(
            f"not UTF-8 text ({exc.reason} at byte offset {offset + exc.start} of the file); "
            'save the file as UTF-8 ("CSV UTF-8" in a spreadsheet) or retype this line'
        ) from None
    try:
        row = cells(text, delimiter)
    except csv.Error as exc:  # none known once a row is one line, but a reason beats a crash
        raise SubscriberError(f"not a readable CSV line ({exc})") from None
    if row is None:
        raise SubscriberError(
            'an unclosed quote ("): each row is one line, so a field cannot hold a line '
            "break; close the quote or remove it"
        )
    return row


def _unquoted(cell: str) -> str:
    """A cell as ``_cell`` wrote it: the ' taken off again, only before a formula start
    (after any further 's), so ``'Tis`` and ``O'Brien`` stay as they are."""
    if cell[:1] == "'" and cell.lstrip("'")[:1] in FORMULA_STARTS:
        return cell[1:]
    return cell


def _checked(
    store: Store,
    chunk: Sequence[_Row],
    report: ImportReport,
    seen: _Seen,
    suppressed: dict[str, str],
) -> list[_Row]:
    """A chunk's rows without repeats of earlier addresses and erased ones (reported)."""
    keep: list[_Row] = []
    if not chunk:
        return keep
    for row, first in zip(chunk, seen.first_times([r.email for r in chunk]), strict=True):
        if not first:
            report.rejected.append((row.number, f"{row.email} appears twice in the file"))
        elif suppressed and (
            reason := suppressed.get(store.readers.address_key(row.email))
            or suppressed.get(email_hash(row.email))
        ):
            because = suppressed_because(reason)
            report.skipped.append((row.number, f"{row.email} {because}; never imported again"))
        else:
            keep.append(row)
    return keep


def _sectors(cell: str, known: set[str]) -> tuple[str, ...]:
    """The sectors of a cell (split by ``;``, ``,`` or spaces, each once), or why not."""
    chosen = cell.replace(";", " ").replace(",", " ").split()
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise SubscriberError(f"unknown sector {unknown[0]!r}{did_you_mean(unknown[0], known)}")
    return tuple(dict.fromkeys(chosen))


def _batch(
    store: Store, chunk: Sequence[_Row], report: ImportReport, *, now: datetime, source: Source
) -> ImportBatch | None:
    """One chunk made ready to write: its known readers looked up, new ones given tokens,
    changed ones compared (the unsubscribed and the unchanged counted here)."""
    if not chunk:
        return None
    known = store.readers.subscriber_index([row.email for row in chunk])
    fresh = [row for row in chunk if row.email not in known]
    new = [
        NewReader(
            row.email,
            row.name,
            row.sectors,
            token,
            row.status,
            row.slot or DEFAULT_SLOT,
            row.watchlist or (),
        )
        for row, token in zip(fresh, new_tokens(len(fresh)), strict=True)
    ]
    changed: list[ReaderChange] = []
    for row in chunk:
        old = known.get(row.email)
        if old is None:
            continue
        slot = old.slot if row.slot is None else row.slot
        terms = old.watchlist if row.watchlist is None else row.watchlist
        if old.status == SubscriberStatus.UNSUBSCRIBED:
            report.skipped.append((row.number, f"{row.email} unsubscribed; not re-subscribed"))
        elif (old.name, old.sectors, old.slot, old.watchlist) == (
            row.name,
            row.sectors,
            slot,
            terms,
        ):
            report.unchanged += 1
        else:
            changed.append(ReaderChange(old.id, row.name, row.sectors, slot, terms))
    # readers and their consent events together
    return store.readers.import_batch(new, changed, now=now, source=source)


def _write(store: Store, batch: ImportBatch | None, report: ImportReport) -> None:
    """One chunk's batch written (on the writing thread), then counted."""
    if batch is None:
        return
    store.readers.write_import(batch)
    report.added += batch.added
    report.updated += len(batch.changed)
