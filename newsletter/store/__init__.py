"""The store: SQLAlchemy over any database URL (SQLite by default), migrated on first use, and
one narrow store per concept (``Store.feeds``, ``.stories``, ``.editions``, ``.readers``,
``.ledger``, ``.events``, ``.outgoing``, ``.locks``, ``.written``, ``.editors``).

Only ``models`` and ``records`` types cross this boundary; rows stay inside.
"""

from __future__ import annotations

from newsletter.store.editions import EditionStore
from newsletter.store.editors import EditorStore
from newsletter.store.events import EventStore
from newsletter.store.feeds import FeedStore
from newsletter.store.ledger import Ledger
from newsletter.store.lock import Locks
from newsletter.store.queue import OutgoingQueue
from newsletter.store.readers import ReaderStore
from newsletter.store.store import Store
from newsletter.store.stories import StoryStore
from newsletter.store.written import WrittenStore

__all__ = [
    "EditionStore",
    "EditorStore",
    "EventStore",
    "FeedStore",
    "Ledger",
    "Locks",
    "OutgoingQueue",
    "ReaderStore",
    "Store",
    "StoryStore",
    "WrittenStore",
]
