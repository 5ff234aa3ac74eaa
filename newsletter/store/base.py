"""What every concept's store shares: the engine, and the key of the keyed address hashes."""

from __future__ import annotations

from sqlalchemy import Engine


class Repository:
    """One concept's queries over the database's engine (``Store`` makes one of each)."""

    def __init__(self, engine: Engine, privacy_key: bytes) -> None:
        self.engine = engine
        # keys the hashes of addresses (suppressions, the sign-up limit's client addresses)
        self.privacy_key = privacy_key
