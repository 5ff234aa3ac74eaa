"""``newsletter subscribers``: add, list, import, export and remove readers."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Column

from newsletter.cli.common import (
    State,
    current_time,
    make_table,
    parse_slugs,
    pass_state,
    plural,
    progress_bar,
)
from newsletter.errors import SubscriberError
from newsletter.models import Frequency, SubscriberStatus
from newsletter.readers.export import export_csv
from newsletter.readers.roster import import_csv
from newsletter.readers.subscriptions import add_subscriber, erase_person, normalise_email
from newsletter.readers.timing import describe, slot_from


@click.group()
def subscribers() -> None:
    """Manage readers from the shell: add, import, export, list, remove.

    Example: newsletter subscribers add ana@example.com --sectors oil-gas
    """


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="The reader's name.")
@click.option("--sectors", metavar="SLUG,...", help="Chosen sectors (default: all).")
@click.option("--pending", is_flag=True, help="Add unconfirmed (no email is sent).")
@click.option("--timezone", "zone", default="", help="IANA time zone (default: the schedule's).")
@click.option("--hour", default="", help="Local delivery hour, one of schedule.delivery_hours.")
@click.option("--weekly", metavar="DAY", default="", help="Weekly on DAY (mon ... sun).")
@click.option("--watch", metavar="TERM,...", help="Names or terms to follow (up to 10).")
@pass_state
def subscribers_add(
    state: State,
    email: str,
    name: str | None,
    sectors: str | None,
    pending: bool,
    zone: str,
    hour: str,
    weekly: str,
    watch: str | None,
) -> None:
    """Add a reader, or update a known one: each option given replaces its value, the rest
    stay as they are. Nothing is written when any value is refused.

    Example: newsletter subscribers add ana@example.com --sectors oil-gas --timezone Asia/Tokyo
    """
    config = state.config
    chosen = parse_slugs(config, sectors) if sectors is not None else None
    when = {
        "timezone": zone,
        "hour": hour,
        "frequency": Frequency.WEEKLY if weekly else "",
        "weekday": weekly,
    }
    slot = slot_from(when, config.file.schedule) if any(when.values()) else None
    store = state.store()
    try:
        reader, created = add_subscriber(
            store,
            email,
            name=name,
            sectors=chosen,
            known_sectors=config.sector_slugs,
            status=SubscriberStatus.PENDING if pending else SubscriberStatus.CONFIRMED,
            now=current_time(),
            slot=slot,
            watchlist=watch,
        )
    finally:
        store.close()
    verb = "Added" if created else "Updated"
    chosen_text = ", ".join(reader.sectors) or "all sectors"
    at = describe(reader.slot, config.file.schedule)
    state.console.print(
        f"{verb} {escape(reader.email)} ({reader.status}; {escape(chosen_text)}; {escape(at)})"
    )


NAME_WIDTH = 36  # a name or watchlist longer than this folds under the address
ADDRESS_WIDTH = 48  # an address longer than this folds (an 80-column table keeps its others)


def _folded(text: str) -> list[str]:
    """``text`` in lines of at most ``NAME_WIDTH``, at spaces or hyphens, a longer word
    folded: never cut."""
    return textwrap.wrap(text, NAME_WIDTH, break_long_words=True, break_on_hyphens=True)


def _address(email: str) -> list[str]:
    """An address on one line, or a longer one than fits (``ADDRESS_WIDTH``) folded after
    its @ and at dots: whole, never cut."""
    if len(email) <= ADDRESS_WIDTH:
        return [email]
    pieces = re.split(r"(?<=[@.])", email)
    lines = [""]
    for piece in pieces:
        while len(piece) > ADDRESS_WIDTH:  # one piece longer than a line: at the width
            lines += [piece[:ADDRESS_WIDTH], ""] if not lines[-1] else [piece[:ADDRESS_WIDTH]]
            piece = piece[ADDRESS_WIDTH:]
        if len(lines[-1]) + len(piece) > ADDRESS_WIDTH:
            lines.append("")
        lines[-1] += piece
    return [line for line in lines if line]


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in SubscriberStatus]),
    help="Only readers with this status.",
)
@pass_state
def subscribers_list(state: State, status: str | None) -> None:
    """List readers: address, name, status, sectors, when they get it, what they follow.

    Example: newsletter subscribers list --status confirmed
    """
    store = state.store()
    try:
        readers = store.readers.subscriber_list(status=_status(status))
    finally:
        store.close()
    # the name and delivery time under the address, so the sectors keep room for a whole slug
    # (a long name or watchlist folds at NAME_WIDTH, so the status and sectors keep theirs)
    table = make_table(
        Column("email\nname\nwhen, watchlist", no_wrap=True),
        Column("status", no_wrap=True, min_width=len(SubscriberStatus.UNSUBSCRIBED)),
        "sectors",
    )
    schedule = state.config.file.schedule
    for r in readers:
        lines = [*_address(r.email), *_folded(r.name), describe(r.slot, schedule)]
        who = escape("\n".join(line for line in [*lines, *_folded("; ".join(r.watchlist))] if line))
        table.add_row(who, r.status, escape(", ".join(r.sectors) or "all"))
    state.console.print(table)
    state.console.print(plural(len(readers), "reader"))


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@pass_state
def subscribers_import(state: State, csv_file: Path) -> None:
    """Import readers from a CSV file: email,name,sectors (UTF-8, with or without BOM), and
    optionally the columns `subscribers export` writes after them: status, timezone, hour,
    frequency, weekday, watchlist (terms split by ;).

    Each row is one line (no field may hold a line break). Known readers are updated, not
    duplicated; readers who unsubscribed or were removed are never brought back; each rejected
    line (a bad address, an open quote, bytes that are not UTF-8, ...) is reported with its
    number and reason, and every other line is imported.

    Example: newsletter subscribers import readers.csv
    """
    config = state.config
    store = state.store()
    try:
        with progress_bar(state.console, "Importing (bytes)") as progress:
            report = import_csv(
                store,
                csv_file,
                known_sectors=config.sector_slugs,
                now=current_time(),
                progress=progress,
                schedule=config.file.schedule,
            )
    finally:
        store.close()
    console = state.console
    for number, reason in report.rejected:
        console.print(f"[red]line {number}:[/] {escape(reason)}")
    for number, reason in sorted(report.skipped + report.notes):
        console.print(f"[yellow]line {number}:[/] {escape(reason)}")
    console.print(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped, {len(report.rejected)} rejected"
    )
    if report.rejected:  # the rest is imported; a script still learns a line needs fixing
        raise SubscriberError(
            f"{plural(len(report.rejected), 'line was', 'lines were')} rejected",
            hint="Fix the lines named above and import the file again: the readers already "
            "imported are kept, not duplicated.",
        )


@subscribers.command("export")
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]))
@pass_state
def subscribers_export(state: State, status: str | None) -> None:
    """Print readers as CSV on standard output: email, name, sectors, status, timezone, hour,
    frequency, weekday and watchlist (`subscribers import` takes the file back).

    Example: newsletter subscribers export --status confirmed > readers.csv
    """
    store = state.store()
    try:
        export_csv(store, sys.stdout, status=_status(status))
    finally:
        store.close()


@subscribers.command("remove")
@click.argument("email")
@pass_state
def subscribers_remove(state: State, email: str) -> None:
    """Erase a person: only a hashed entry remains, so no import can bring them back.

    Example: newsletter subscribers remove ana@example.com
    """
    store = state.store()
    try:
        address = normalise_email(email)
        found = erase_person(state.config, store, address, now=current_time())
    finally:
        store.close()
    if found:
        state.console.print(f"Erased {escape(address)}; it is suppressed from now on")
    else:
        state.console.print(f"{escape(address)} was not a reader; it is suppressed from now on")


def _status(value: str | None) -> SubscriberStatus | None:
    """A ``--status`` choice as the store takes it."""
    return None if value is None else SubscriberStatus(value)
