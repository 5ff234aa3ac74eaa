"""The reader list as CSV, streamed from the store in id order and written as it comes:
``email,name,sectors,status,timezone,hour,frequency,weekday,watchlist``, what an import reads
back (``roster``). A name, address or watchlist that starts with one of ``FORMULA_STARTS`` (a
spreadsheet would run it as a formula), or with 's and then one of them, is written with one
more ' in front; an import takes exactly that one ' off again."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import TextIO

from newsletter.models import SubscriberStatus
from newsletter.models.readers import Subscriber
from newsletter.readers.roster import CHUNK, FORMULA_STARTS
from newsletter.readers.timing import WEEKDAYS
from newsletter.store import Store


def export_csv(
    store: Store, out: TextIO, *, status: SubscriberStatus | None = None, page: int = CHUNK
) -> int:
    """Write ``email,name,sectors,status`` rows as they stream from the store; how many."""
    count = -1  # the header is no reader
    for line in export_lines(store, status=status, page=page):
        out.write(line)
        count += 1
    return count


def export_lines(
    store: Store, *, status: SubscriberStatus | None = None, page: int = CHUNK
) -> Iterator[str]:
    """The export's CSV lines (the header first), as they stream from the store."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows: Iterator[list[str]] = (
        [_cell(r.email), _cell(r.name), " ".join(r.sectors), r.status, *_when(r)]
        for r in store.readers.iter_subscribers(status=status, page=page)
    )
    for row in itertools.chain([HEADER], rows):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


HEADER = ["email", "name", "sectors", "status", "timezone", "hour", "frequency", "weekday"]
HEADER.append("watchlist")


def _when(reader: Subscriber) -> list[str]:
    """A reader's delivery slot and watchlist as the export's last five cells."""
    hour = "" if reader.hour is None else str(reader.hour)
    day = "" if reader.weekday is None else WEEKDAYS[reader.weekday]
    terms = _cell("; ".join(reader.watchlist))
    return [reader.timezone, hour, reader.frequency, day, terms]


def _cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading ', and
    so does one that already starts with 's before a formula start (import takes one ' off)."""
    return "'" + value if value.lstrip("'")[:1] in FORMULA_STARTS else value
