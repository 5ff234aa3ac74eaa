"""``Store``: every query the other stages need, over one SQLAlchemy engine."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, InternalError, OperationalError, SQLAlchemyError

from newsletter.errors import ConfigError, NewsletterError, StoreError, StoreUnavailable
from newsletter.store.base import foreign_keys_unchecked
from newsletter.store.editions import EditionStore
from newsletter.store.editors import EditorStore
from newsletter.store.events import EventStore
from newsletter.store.feeds import FeedStore
from newsletter.store.ledger import Ledger
from newsletter.store.lock import Locks
from newsletter.store.queue import OutgoingQueue
from newsletter.store.readers import ReaderStore
from newsletter.store.stories import StoryStore
from newsletter.store.variants import VariantStore
from newsletter.store.written import WrittenStore

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATE_LOCK = 7_241_530_118  # the advisory lock the migrations run under on PostgreSQL


class Store:
    """One database: opened, migrated and checked here, and a narrow store per concept, which
    is what callers are given: ``feeds``, ``stories``, ``editions``, ``readers``, ``ledger``,
    ``events``, ``outgoing`` (the transactional mail queue), ``locks``, ``written`` (the
    writer's cache) and ``editors`` (the desk's accounts and audit log)."""

    def __init__(self, engine: Engine, *, privacy_key: bytes | None = None) -> None:
        self.engine = engine
        # keys the hashes of suppressed addresses; the commands pass the configured secret
        # (Config.privacy_key), code that opens a store by URL alone gets one derived from it
        self.privacy_key = (
            privacy_key or hashlib.sha256(b"newsletter-store:" + str(engine.url).encode()).digest()
        )
        key = self.privacy_key
        self.feeds = FeedStore(engine, key)
        self.stories = StoryStore(engine, key)
        self.editions = EditionStore(engine, key)
        self.readers = ReaderStore(engine, key)
        self.ledger = Ledger(engine, key)
        self.events = EventStore(engine, key)
        self.outgoing = OutgoingQueue(engine, key)
        self.locks = Locks(engine, key)
        self.written = WrittenStore(engine, key)
        self.variants = VariantStore(engine, key)
        self.editors = EditorStore(engine, key)

    @classmethod
    def open(cls, url: str, *, privacy_key: bytes | None = None) -> Store:
        """Connect (creating a SQLite file and its folder if needed) and migrate the schema."""
        parsed = _parsed(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            # PostgreSQL: a small pool per process, checked before use (a server restart or an
            # idle timeout must not fail the next query); SQLite: SQLAlchemy's own defaults
            options: dict[str, Any] = (
                {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
                if parsed.get_backend_name() == "postgresql"
                else {}
            )
            engine = create_engine(url, **options)
        except (SQLAlchemyError, ImportError) as exc:
            driver = parsed.drivername
            said = f"no database driver for {driver!r}" if "plugin" in str(exc) else str(exc)
            raise ConfigError(
                f"cannot use database {parsed.render_as_string(hide_password=True)}: {said}",
                hint=("Did you mean 'postgresql+psycopg://'? " if driver == "postgres" else "")
                + _URL_HINT,
            ) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", _unavailable)
        store = cls(engine, privacy_key=privacy_key)
        store.migrate()
        if privacy_key is not None and not store.locks.key_matches():
            store.close()
            raise ConfigError(
                "this machine's privacy key is not the one the database was first used with, "
                "so erased and suppressed addresses would not be recognised here",
                hint="Set the variable privacy.key_env names (NEWSLETTER_PRIVACY_KEY) to the "
                "same value on every machine that uses this database (the first machine's key "
                "is its privacy.key file, beside config.yaml, when it has no such variable).",
            )
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when it is already there).

        The usual case, a database already at the newest revision, is one plain query:
        Alembic (a large import) is loaded only when there is something to do."""
        current = self._current_revision()
        if current == newest_revision():
            return
        problem = revision_problem(current or "", self.engine.url.render_as_string())
        if problem is not None:
            raise problem
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        config = _alembic_config()
        heads = {newest_revision()}
        try:
            # SQLite: a migration that rebuilds a table (copy, drop, rename) must not take the
            # rows pointing at it along (ON DELETE CASCADE): references are checked after it
            with self.engine.connect() as conn, foreign_keys_unchecked(conn), conn.begin():
                if conn.dialect.name == "postgresql":
                    # one process migrates at a time: the others wait here, then find it done
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
                if set(MigrationContext.configure(conn).get_current_heads()) == heads:
                    return
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                if conn.dialect.name == "sqlite":
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise StoreError(
                            f"the migration left {len(broken)} rows of {broken[0][0]} pointing "
                            "at rows that are gone",
                            hint="Keep this database file aside and go back to the copy taken "
                            "before the upgrade (docs/deploy.md).",
                        )
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open or migrate the database: {exc.__class__.__name__}: {exc.args[0]}",
                hint="Check the `database` key in config.yaml, and that the file or server is "
                "reachable.",
            ) from None

    def _current_revision(self) -> str | None:
        """The revision the database records, or None (no table yet, or it cannot be read)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except (SQLAlchemyError, StoreUnavailable):
            return None
        return rows[0][0] if len(rows) == 1 else None

    def revision(self) -> str:
        """The schema's current Alembic revision."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return ",".join(sorted(MigrationContext.configure(conn).get_current_heads()))

    @staticmethod
    def revisions(url: str) -> tuple[str, str]:
        """(the database's revision, "" when it has none; the newest there is), read without
        migrating anything (``ConfigError``: a revision this version cannot migrate)."""
        from alembic.runtime.migration import MigrationContext

        newest = newest_revision()
        try:
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    current = MigrationContext.configure(conn).get_current_heads()
            finally:
                engine.dispose()
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(
                f"cannot read {Store.describe(url)}: {exc.__class__.__name__}: {exc}",
                hint="Check the `database` key (or NEWSLETTER_DATABASE_URL).",
            ) from None
        revision = ",".join(sorted(current))
        problem = revision_problem(revision, url)
        if problem is not None:
            raise problem
        return revision, newest

    @staticmethod
    def describe(url: str) -> str:
        """The database's URL without its password, for messages."""
        return make_url(url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def newest_revision() -> str:
    """The newest migration's revision: the history is one line of files named by their
    revision (``0013_signups.py`` is revision ``0013``), so the highest number is the head
    (``tests/test_store.py`` checks it against Alembic's own answer)."""
    names = (path.name.partition("_")[0] for path in (MIGRATIONS / "versions").glob("*.py"))
    return max(name for name in names if name.isdigit())


_URL_HINT = (
    "Set the `database` key in config.yaml (or NEWSLETTER_DATABASE_URL, which wins) to a "
    "SQLAlchemy URL: sqlite:///newsletter.db, or postgresql+psycopg://USER@HOST/DATABASE."
)


def _parsed(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        shown = re.sub(r"://[^@/]*@", "://***@", url)  # never a password in a message
        raise ConfigError(f"{shown!r} is not a database URL", hint=_URL_HINT) from None


def revision_problem(current: str, url: str) -> ConfigError | None:
    """Why a database at ``current`` cannot be migrated by this version (None: it can): its
    schema is newer than this version knows, or the revision is another application's."""
    if not current or (current.isdigit() and current <= newest_revision()):
        return None
    where = Store.describe(url)
    if current.isdigit():
        return ConfigError(
            f"{where} is at schema revision {current}, newer than this version of newsletter "
            f"knows (its newest is {newest_revision()})",
            hint="Upgrade the newsletter package on this machine to the version that migrated "
            "the database (docs/deploy.md: every machine first, then `newsletter db upgrade`).",
        )
    return ConfigError(
        f"{where} holds another application's schema: its revision {current!r} is none of "
        "newsletter's",
        hint="Point `database` in config.yaml (or NEWSLETTER_DATABASE_URL) at newsletter's own "
        "database, or at a new empty one.",
    )


def _alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


# PostgreSQL's answers to a URL naming a database or role it does not have
_MISNAMED = re.compile(r'\b(database|role) "[^"]*" does not exist')


def _unavailable(context: ExceptionContext) -> NewsletterError | None:
    """A database that cannot be reached or written comes out of every query as one
    ``StoreUnavailable`` naming the cause, instead of the driver's own exception (which only
    ``store/`` may know). Other errors (a broken constraint, a bad query) stay as they are,
    and so does a failed pre-ping, which the pool handles itself."""
    error = context.sqlalchemy_exception
    if context.is_pre_ping or not (
        context.is_disconnect or isinstance(error, (OperationalError, InternalError))
    ):
        return None
    cause = context.original_exception
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if _MISNAMED.search(first):  # a name to correct, not a server to wait for
        return ConfigError(f"the database cannot be used: {first}", hint=_URL_HINT)
    unavailable = StoreUnavailable(
        f"the database cannot be used just now: {first}",
        hint="Check that its disk has room, that it may be written, and that the server is up; "
        "then run the command again.",
    )
    unavailable.__cause__ = cause
    return unavailable


CACHE_KB = 16_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; commits skip the fsync
    cursor.execute("PRAGMA busy_timeout=5000")
    # 16 MB of page cache at most per connection (the default is 2 MB; memory is only taken as
    # pages are read). An import asks for more on its own connections (``store.imports``);
    # a send's connections (claims and records, the heartbeat) filled 32 MB each on a million
    # readers: 259 MB at its peak, 211 MB with 16 MB each
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KB}")
    # the log is folded back into the database every 40 MB rather than every 4 MB: a million-row
    # import or send commits often, and each fold rewrites the pages it touched
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()
