"""Mixed into ``Store``: subscribers by token, the consent history, suppressions, erasure."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)

from newsletter.models import ConsentKind, Source, Subscriber, SubscriberStatus, SuppressionReason
from newsletter.records import ConsentEvent, KnownReader, NewReader, ReaderChange
from newsletter.store.base import Repository
from newsletter.store.ledger import subscriber_record
from newsletter.store.tables import (
    events,
    subscriber_events,
    subscribers,
    suppressions,
)


def email_hash(email: str) -> str:
    """The old, unkeyed suppression key (SHA-256 of the address): only to find old entries."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def keyed_hash(key: bytes, email: str) -> str:
    """The suppression key of an address: HMAC-SHA256 under the publication's secret, so the
    list cannot be reversed by hashing guessed addresses."""
    return hmac.digest(key, email.strip().lower().encode(), "sha256").hex()


class ConsentQueries(Repository):
    def address_key(self, email: str) -> str:
        return keyed_hash(self.privacy_key, email)

    def subscriber_by_token(self, token: str) -> Subscriber | None:
        if not token or len(token) > 64:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.token == token)).first()
        return None if row is None else subscriber_record(row)

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return None if row is None else subscriber_record(row)

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
        return None if row is None else subscriber_record(row)

    def update_subscriber(
        self,
        subscriber_id: int,
        *,
        now: datetime,
        status: SubscriberStatus | None = None,
        name: str | None = None,
        sectors: Sequence[str] | None = None,
    ) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if status is not None:
            values["status"] = status
        if name is not None:
            values["name"] = name
        if sectors is not None:
            values["sectors"] = json.dumps(list(sectors))
        with self.engine.begin() as conn:
            conn.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(values)
            )

    def add_event(
        self,
        subscriber: Subscriber,
        kind: ConsentKind,
        *,
        now: datetime,
        source: Source,
        wording: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.add_events(
            [(subscriber, kind, details or {})], now=now, source=source, wording=wording
        )

    def add_events(
        self,
        events: Iterable[tuple[Subscriber, ConsentKind, Mapping[str, Any]]],
        *,
        now: datetime,
        source: Source,
        wording: str = "",
    ) -> None:
        rows = [
            {
                "subscriber_id": s.id,
                "email_hash": self.address_key(s.email),
                "kind": kind,
                "at": now,
                "source": str(source)[:200],
                "wording": wording,
                "details": json.dumps(dict(details), ensure_ascii=False),
            }
            for s, kind, details in events
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(subscriber_events), rows)

    def events_of(self, subscriber_id: int) -> list[ConsentEvent]:
        """A reader's consent history, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriber_events)
                .where(subscriber_events.c.subscriber_id == subscriber_id)
                .order_by(subscriber_events.c.id)
            ).all()
        return [
            ConsentEvent(
                ConsentKind(r.kind), Source.parse(r.source), r.wording, json.loads(r.details), r.at
            )
            for r in rows
        ]

    def is_suppressed(self, email: str) -> bool:
        """Whether an address is suppressed; an old unkeyed entry is re-keyed when found."""
        keyed, old = self.address_key(email), email_hash(email)
        with self.engine.begin() as conn:
            found = (
                conn.execute(
                    select(suppressions.c.email_hash).where(
                        suppressions.c.email_hash.in_([keyed, old])
                    )
                )
                .scalars()
                .all()
            )
            if old in found and keyed not in found:
                conn.execute(
                    update(suppressions)
                    .where(suppressions.c.email_hash == old)
                    .values(email_hash=keyed)
                )
        return bool(found)

    def suppressed_hashes(self) -> set[str]:
        """Every suppression key (keyed, and any old unkeyed one), for checks in bulk."""
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(select(suppressions.c.email_hash))}

    def erase(self, email: str, *, now: datetime, source: Source) -> int | None:
        """Delete a person: their row, their consent history (sign-up IPs, times, wording)
        and any old unkeyed entry; only a keyed hash stays in the suppression list. Returns
        the reader's id (None when the address was not a reader)."""
        key, old = self.address_key(email), email_hash(email)
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers.c.id).where(subscribers.c.email == email)).first()
            if row is not None:
                conn.execute(
                    delete(subscriber_events).where(subscriber_events.c.subscriber_id == row.id)
                )
                conn.execute(delete(events).where(events.c.subscriber_id == row.id))
                conn.execute(delete(subscribers).where(subscribers.c.id == row.id))
            conn.execute(
                delete(subscriber_events).where(subscriber_events.c.email_hash.in_([key, old]))
            )
            conn.execute(delete(suppressions).where(suppressions.c.email_hash.in_([key, old])))
            conn.execute(
                insert(suppressions).values(email_hash=key, reason=SuppressionReason.ERASED, at=now)
            )
            # that an erasure happened, and when: nothing that leads back to the person
            conn.execute(
                insert(subscriber_events).values(
                    subscriber_id=None,
                    email_hash="",
                    kind=ConsentKind.ERASURE,
                    at=now,
                    source=str(source.channel),  # never who asked
                    wording="",
                    details="{}",
                )
            )
        return None if row is None else int(row.id)

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
            for start in range(0, len(emails), 5000):
                part = list(emails[start : start + 5000])
                if conn.dialect.name == "sqlite":  # one JSON text instead of 5,000 parameters
                    rows = conn.execute(_BY_ADDRESS_JSON, {"emails": json.dumps(part)})
                else:
                    rows = conn.execute(_BY_ADDRESS, {"emails": part})
                out.update(
                    {
                        r.email: KnownReader(
                            r.id, r.name, _sectors_of(r.sectors), SubscriberStatus(r.status)
                        )
                        for r in rows
                    }
                )
        return out

    def iter_subscribers(
        self, *, status: SubscriberStatus | None = None, page: int = 5000
    ) -> Iterator[Subscriber]:
        """Every reader in id order, read from the store a page at a time."""
        after = 0
        while True:
            query = select(subscribers).where(subscribers.c.id > after)
            if status is not None:
                query = query.where(subscribers.c.status == status)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(subscribers.c.id).limit(page)).all()
            if not rows:
                return
            for row in rows:
                yield subscriber_record(row)
            after = rows[-1].id


@functools.lru_cache(maxsize=4096)
def _sectors_text(sectors: tuple[str, ...]) -> str:
    """The stored form of a choice of sectors (a few hundred choices, many readers each)."""
    return json.dumps(list(sectors))


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
        ),
        [
            {"row_id": c.id, "name": c.name, "sectors": _sectors_text(c.sectors), "updated_at": now}
            for c in changed
        ],
    )
