"""The store: SQLAlchemy over any database URL (SQLite by default), migrated on first use.

Only ``models`` types cross this boundary; rows stay inside.
"""

from __future__ import annotations

from newsletter.store.store import Store

__all__ = ["Store"]
