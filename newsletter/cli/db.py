"""``newsletter db upgrade`` and ``db current``: the schema's migrations, for operators who run
them explicitly (every command also migrates a store it opens, under a lock on PostgreSQL)."""

from __future__ import annotations

import click
from rich.markup import escape

from newsletter.cli.common import State, pass_state
from newsletter.store import Store


@click.group()
def db() -> None:
    """The database schema: upgrade it, or show its revision.

    Example: newsletter db current
    """


@db.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Bring the schema to the newest revision (two processes at once do not race: on
    PostgreSQL they take turns under an advisory lock).

    Example: NEWSLETTER_DATABASE_URL=postgresql+psycopg://news@db/news newsletter db upgrade
    """
    config = state.config
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    try:
        revision = store.revision()
    finally:
        store.close()
    state.console.print(f"The schema is at revision {escape(revision)} (the newest).")


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the schema's revision, and whether it is the newest, without changing anything.

    Example: newsletter db current
    """
    config = state.config
    current, newest = Store.revisions(config.database_url)
    where = escape(Store.describe(config.database_url))
    if current == newest:
        state.console.print(f"{where}: revision {escape(current)} (the newest)")
    else:
        state.console.print(
            f"{where}: revision {escape(current or 'none')}; the newest is {escape(newest)}: "
            "run `newsletter db upgrade`"
        )
