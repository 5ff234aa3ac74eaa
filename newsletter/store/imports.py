"""Mixed into ``Store``: the reader list's bulk import, a chunk of rows in one transaction
(``readers.roster``): known readers by address, new ones inserted with their consent events,
changed ones updated."""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
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
from newsletter.records import KnownReader, NewReader, ReaderChange
from newsletter.store.base import Repository
from newsletter.store.ledger import slot_of_row, slot_values, terms_of
from newsletter.store.tables import subscriber_events, subscribers

# the indexes of a million readers (address, token) stay in memory while an import writes,
# instead of each insert or lookup parsing their pages again (other connections keep
# ``store.store.CACHE_KB``, 16 MB)
IMPORT_CACHE_KB = 32_000


def _large_cache(conn: Connection) -> None:
    """An import's connection keeps ``IMPORT_CACHE_KB`` of pages, on SQLite."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_CACHE_KB}")


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
        with self.engine.begin() as conn:
            _large_cache(conn)
            if new:
                rows = [
                    {
                        "email": r.email,
                        "name": r.name,
                        "sectors": _sectors_text(r.sectors),
                        "status": r.status,
                        "token": r.token,
                        "created_at": now,
                        "updated_at": now,
                        **slot_values(r.slot),
                        "watchlist": _terms_text(r.watchlist),
                    }
                    for r in new
                ]
                _execute_many(conn, _insert_of(subscribers, list(rows[0])), rows)
                if source is not None:
                    # each new reader's id found by the database, by address, in the insert
                    key = self.privacy_key
                    _execute_many(
                        conn,
                        _IMPORT_EVENT,
                        [
                            {
                                # addresses here are normalised: keyed_hash without its strip
                                "email_hash": hmac.digest(key, r.email.encode(), "sha256").hex(),
                                "at": now,
                                "source": str(source)[:200],
                                "email": r.email,
                            }
                            for r in new
                        ],
                    )
            if changed:
                _update_readers(conn, changed, now=now)

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


def _execute_many(conn: Connection, statement: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """One statement for many rows, in one executemany; the values that need converting
    (times) are converted once per distinct value, since a chunk's rows share them: at a
    million rows SQLAlchemy's per-row parameter handling costs more than the database's own
    insert. Every bind parameter of ``statement`` carries its column's type."""
    compiled = statement.compile(dialect=conn.dialect)
    names = list(rows[0])
    order = list(compiled.positiontup or names) if compiled.positional else names
    binds = {b.key: b for b in compiled.binds.values()}
    converters = [(k, binds[n].type.bind_processor(conn.dialect)) for k, n in enumerate(order)]
    to_convert = [(k, convert) for k, convert in converters if convert is not None]
    # SQLite stores a time as the text its driver would make (isoformat with a space)
    as_text = conn.dialect.name == "sqlite"
    done: dict[Any, Any] = {}

    def native(convert: Any, value: Any) -> Any:
        if value is None:
            return None
        key = (convert, value)
        if key not in done:
            out = convert(value)
            done[key] = out.isoformat(" ") if as_text and isinstance(out, datetime) else out
        return done[key]

    getter = itemgetter(*order)
    params: list[Any] = []
    for row in rows:
        values = list(getter(row)) if len(order) > 1 else [getter(row)]
        for k, convert in to_convert:
            values[k] = native(convert, values[k])
        params.append(
            tuple(values) if compiled.positional else dict(zip(order, values, strict=True))
        )
    conn.exec_driver_sql(str(compiled), params)


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
