"""What every concept's store shares: the engine, the key of the keyed address hashes, and a
connection without foreign-key checks for a statement that checks them itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine


class Repository:
    """One concept's queries over the database's engine (``Store`` makes one of each)."""

    def __init__(self, engine: Engine, privacy_key: bytes) -> None:
        self.engine = engine
        # keys the hashes of addresses (suppressions, the sign-up limit's client addresses)
        self.privacy_key = privacy_key


@contextlib.contextmanager
def foreign_keys_unchecked(conn: Connection) -> Iterator[None]:
    """On SQLite, ``conn`` without foreign-key checks while it lasts, for a statement whose rows
    are known to fit them (the ledger's seeding: its rows come from the readers' table and
    name an edition checked to exist in the same statement, where a million look-ups of each
    row's reader, in the rows' order, took 1.8 s of 4.7), and for the migrations (a table
    rebuilt by copying it would otherwise cascade its old copy's deletion into every table
    that points at it; ``Store.migrate`` checks the references after). The pragma takes
    effect outside a transaction only; it is set back before the connection returns to the
    pool, also after an error."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()
