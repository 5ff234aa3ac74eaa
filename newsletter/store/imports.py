"""Mixed into ``Store``: the reader list's bulk import, a chunk of rows in one transaction
(``readers.roster``): known readers by address, new ones inserted with their consent events,
changed ones updated."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Insert,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)

from newsletter.models import Source, SubscriberStatus
from newsletter.models.readers import Slot
from newsletter.records import KnownReader, NewReader, ReaderChange
from newsletter.store.base import Repository
from newsletter.store.consent import keyed_hashes
from newsletter.store.rows import slot_of_row, slot_values, terms_of
from newsletter.store.tables import subscriber_events, subscribers

# the indexes of a million readers (address, token) stay in memory while an import writes,
# instead of each insert or lookup parsing their pages again (other connections keep
# ``store.store.CACHE_KB``, 16 MB)
IMPORT_CACHE_KB = 32_000


def _large_cache(conn: Connection) -> None:
    """An import's connection keeps ``IMPORT_CACHE_KB`` of pages, on SQLite."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_CACHE_KB}")


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """A chunk of an import made ready for the driver (``ImportQueries.import_batch``): its
    statements and their rows of parameters, built on the reading thread so the writing
    thread only runs them."""

    readers: tuple[str, list[Any]] | None  # (statement, rows) of the new readers
    events: tuple[str, list[Any]] | None  # their consent events
    changed: Sequence[ReaderChange]
    now: datetime

    @property
    def added(self) -> int:
        return len(self.readers[1]) if self.readers else 0


class ImportQueries(Repository):
    def bulk_import(
        self,
        new: Sequence[NewReader],
        changed: Sequence[ReaderChange],
        *,
        now: datetime,
        source: Source | None = None,
    ) -> None:
        """Add confirmed readers and update known ones, in one transaction; with ``source``,
        each new reader's "import" consent event goes in the same transaction."""
        self.write_import(self.import_batch(new, changed, now=now, source=source))

    def import_batch(
        self,
        new: Sequence[NewReader],
        changed: Sequence[ReaderChange],
        *,
        now: datetime,
        source: Source | None = None,
    ) -> ImportBatch:
        """``bulk_import``'s rows as the driver takes them, without touching the database."""
        dialect = self.engine.dialect
        readers = events = None
        if new:
            readers = _driver_rows(
                dialect,
                _insert_of(subscribers, (*_READER_ROW, "created_at", "updated_at")),
                _READER_ROW,
                [
                    (
                        r.email,
                        r.name,
                        _sectors_text(r.sectors),
                        r.status,
                        r.token,
                        _terms_text(r.watchlist),
                        *_slot_columns(r.slot),
                    )
                    for r in new
                ],
                {"created_at": now, "updated_at": now},
            )
            if source is not None:
                # each new reader's id found by the database, by address, in the insert;
                # addresses here are normalised: keyed_hash without its strip
                emails = [r.email for r in new]
                events = _driver_rows(
                    dialect,
                    _IMPORT_EVENT,
                    ("email", "email_hash"),
                    list(zip(emails, keyed_hashes(self.privacy_key, emails), strict=True)),
                    {"at": now, "source": str(source)[:200]},
                )
        return ImportBatch(readers, events, changed, now)

    def write_import(self, batch: ImportBatch) -> None:
        """One ``import_batch`` written in one transaction."""
        with self.engine.begin() as conn:
            _large_cache(conn)
            for part in (batch.readers, batch.events):
                if part is not None:
                    conn.exec_driver_sql(*part)
            if batch.changed:
                _update_readers(conn, batch.changed, now=batch.now)

    def subscriber_index(self, emails: Sequence[str]) -> dict[str, KnownReader]:
        """The known readers among ``emails``, by address."""
        out = {}
        with self.engine.connect() as conn:
            _large_cache(conn)
            for start in range(0, len(emails), 5000):
                part = list(emails[start : start + 5000])
                if conn.dialect.name == "sqlite":  # one JSON text instead of 5,000 parameters
                    rows = conn.execute(_BY_ADDRESS_JSON, {"emails": json.dumps(part)})
                else:
                    rows = conn.execute(_BY_ADDRESS, {"emails": part})
                out.update(
                    {
                        r.email: KnownReader(
                            r.id,
                            r.name,
                            _sectors_of(r.sectors),
                            SubscriberStatus(r.status),
                            slot_of_row(r),
                            terms_of(r.watchlist),
                        )
                        for r in rows
                    }
                )
        return out


@functools.lru_cache(maxsize=4096)
def _sectors_text(sectors: tuple[str, ...]) -> str:
    """The stored form of a choice of sectors (a few hundred choices, many readers each)."""
    return json.dumps(list(sectors))


@functools.lru_cache(maxsize=4096)
def _terms_text(terms: tuple[str, ...]) -> str:
    return json.dumps(list(terms), ensure_ascii=False) if terms else "[]"


_SLOT_KEYS = ("timezone", "delivery_hour", "frequency", "weekday")
# a new reader's own columns, in the order ``import_batch`` builds them
_READER_ROW = ("email", "name", "sectors", "status", "token", "watchlist", *_SLOT_KEYS)


@functools.lru_cache(maxsize=4096)
def _slot_columns(slot: Slot) -> tuple[Any, ...]:
    """``slot_values`` in ``_SLOT_KEYS``'s order, once per distinct slot (an import's readers
    share a few)."""
    values = slot_values(slot)
    return tuple(values[key] for key in _SLOT_KEYS)


@functools.lru_cache(maxsize=4096)
def _sectors_of(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _insert_of(table: Table, names: Sequence[str]) -> Insert:
    return insert(table).values({n: bindparam(n, type_=table.c[n].type) for n in names})


# readers by address, the list of addresses one parameter (compiled once, expanded per call)
_READER_KEYS = (
    subscribers.c.email,
    subscribers.c.id,
    subscribers.c.name,
    subscribers.c.sectors,
    subscribers.c.status,
    subscribers.c.timezone,
    subscribers.c.delivery_hour,
    subscribers.c.frequency,
    subscribers.c.weekday,
    subscribers.c.watchlist,
)
_BY_ADDRESS = select(*_READER_KEYS).where(
    subscribers.c.email.in_(bindparam("emails", expanding=True))
)
# the same on SQLite, the addresses one JSON array read by json_each
_BY_ADDRESS_JSON = select(*_READER_KEYS).where(
    subscribers.c.email.in_(
        select(func.json_each(bindparam("emails")).table_valued("value").c.value)
    )
)

# an import's consent event, the reader's id looked up by address inside the insert
_IMPORT_EVENT = insert(subscriber_events).from_select(
    ["subscriber_id", "email_hash", "kind", "at", "source", "wording", "details"],
    select(
        subscribers.c.id,
        bindparam("email_hash", type_=subscriber_events.c.email_hash.type),
        literal_column("'import'"),
        bindparam("at", type_=subscriber_events.c.at.type),
        bindparam("source", type_=subscriber_events.c.source.type),
        literal_column("''"),
        literal_column("'{}'"),
    ).where(subscribers.c.email == bindparam("email", type_=subscribers.c.email.type)),
)


def _driver_rows(
    dialect: Dialect,
    statement: Insert,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    constants: Mapping[str, Any],
) -> tuple[str, list[Any]]:
    """One statement for many rows, as its SQL and the driver's parameters for one
    executemany: each row's values of ``names`` (none of a type needing a conversion) and
    ``constants``, the values every row shares, converted once
    (a chunk's rows share their times): at a million rows SQLAlchemy's per-row parameter
    handling costs more than the database's own insert. Every bind parameter of
    ``statement`` carries its column's type."""
    compiled = statement.compile(dialect=dialect)
    binds = {b.key: b for b in compiled.binds.values()}
    converted = [n for n in names if binds[n].type.bind_processor(dialect) is not None]
    if converted:
        raise TypeError(f"{converted}: values of a type the driver cannot take as they are")
    shared = tuple(_native(dialect, binds[n].type, v) for n, v in constants.items())
    where = {n: k for k, n in enumerate((*names, *constants))}
    order = list(compiled.positiontup or where) if compiled.positional else list(where)
    getter = itemgetter(*(where[n] for n in order))
    if compiled.positional:
        return str(compiled), [getter(row + shared) for row in rows]
    return str(compiled), [dict(zip(order, getter(row + shared), strict=True)) for row in rows]


def _native(dialect: Dialect, type_: Any, value: Any) -> Any:
    """A value as the driver takes it (on SQLite a time is the text its driver would make:
    isoformat with a space)."""
    convert = type_.bind_processor(dialect)
    out = value if convert is None or value is None else convert(value)
    return out.isoformat(" ") if dialect.name == "sqlite" and isinstance(out, datetime) else out


def _update_readers(conn: Connection, changed: Sequence[ReaderChange], *, now: datetime) -> None:
    """Known readers' new names and sectors, in one statement run for each."""
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == bindparam("row_id"))
        .values(
            name=bindparam("name"),
            sectors=bindparam("sectors"),
            updated_at=bindparam("updated_at"),
            **{key: bindparam(key) for key in (*_SLOT_KEYS, "watchlist")},
        ),
        [
            {
                "row_id": c.id,
                "name": c.name,
                "sectors": _sectors_text(c.sectors),
                "updated_at": now,
                **slot_values(c.slot),
                "watchlist": _terms_text(c.watchlist),
            }
            for c in changed
        ],
    )
