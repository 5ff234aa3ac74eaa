"""The delivery commands of ``newsletter``: ``send`` and ``subscribers``.

They are registered on the group in ``cli.py``; like it, only this module prints.
"""

from __future__ import annotations

from datetime import date

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from newsletter import delivery, pipeline
from newsletter.cli import State, _now, _parse_slugs, _print_collect, cli, pass_state
from newsletter.errors import NewsletterError
from newsletter.mailers import make_mailer
from newsletter.subscriptions import add_subscriber


@cli.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The edition's date.")
@click.option("--dry-run", is_flag=True, help="Everything but sending (SendGrid: sandbox mode).")
@click.option(
    "--collect/--no-collect", default=True, show_default=True, help="Fetch the feeds first."
)
@click.option("--retry-failed", is_flag=True, help="Send again to readers whose delivery failed.")
@pass_state
def send(state: State, day: object, dry_run: bool, collect: bool, retry_failed: bool) -> None:
    """Deliver the day's edition to every confirmed reader, exactly once each.

    Run it again after a crash or a failure: it finishes the edition without sending anyone a
    second copy, except possibly the readers of the one batch that was in flight.

    Example: newsletter send --dry-run
    """
    config = state.config
    console = state.console
    edition_day: date | None = day.date() if day is not None else None  # type: ignore[attr-defined]
    store = state.store()
    mailer = make_mailer(config)
    try:
        if collect and edition_day is None:
            _print_collect(console, pipeline.collect_all(config, store, now=_now()))
        if console.is_terminal:
            columns = (
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("Sending", total=None)
                report = delivery.send_edition(
                    config,
                    store,
                    mailer,
                    now=_now,
                    day=edition_day,
                    dry_run=dry_run,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        else:
            report = delivery.send_edition(
                config, store, mailer, now=_now, day=edition_day, dry_run=dry_run
            )
    finally:
        mailer.close()
        store.close()
    what = "Dry run" if report.dry_run else "Sent"
    console.print(
        f"{what}: edition of {report.edition_date}: {report.sent} sent, {report.failed} failed, "
        f"{report.skipped} skipped, {report.already_sent} already sent before "
        f"({report.seconds:.1f} s, through {mailer.name})"
    )
    if report.failed:
        raise NewsletterError(
            f"{report.failed} deliveries failed",
            hint="`newsletter status` counts them; try again with: newsletter send --retry-failed",
        )


@cli.group()
def subscribers() -> None:
    """Manage readers from the shell: add and list.

    Example: newsletter subscribers add ana@example.com --sectors oil-gas
    """


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The reader's name.")
@click.option("--sectors", metavar="SLUG,...", help="Chosen sectors (default: all).")
@click.option("--pending", is_flag=True, help="Add unconfirmed (no email is sent).")
@pass_state
def subscribers_add(
    state: State, email: str, name: str, sectors: str | None, pending: bool
) -> None:
    """Add a reader (or update a known reader's name and sectors).

    Example: newsletter subscribers add ana@example.com --name "Ana Ruiz" --sectors oil-gas
    """
    config = state.config
    chosen = _parse_slugs(config, sectors)
    store = state.store()
    try:
        reader, created = add_subscriber(
            store,
            email,
            name=name,
            sectors=chosen,
            known_sectors=config.sector_slugs,
            status="pending" if pending else "confirmed",
            now=_now(),
        )
    finally:
        store.close()
    verb = "Added" if created else "Updated"
    chosen_text = ", ".join(reader.sectors) or "all sectors"
    state.console.print(f"{verb} {escape(reader.email)} ({reader.status}; {escape(chosen_text)})")


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "confirmed", "unsubscribed", "bounced"]),
    help="Only readers with this status.",
)
@pass_state
def subscribers_list(state: State, status: str | None) -> None:
    """List readers: address, name, status and sectors.

    Example: newsletter subscribers list --status confirmed
    """
    store = state.store()
    try:
        readers = store.subscriber_list(status=status)
    finally:
        store.close()
    table = Table()
    for column in ("email", "name", "status", "sectors"):
        table.add_column(column)
    for r in readers:
        table.add_row(
            escape(r.email), escape(r.name), r.status, escape(", ".join(r.sectors) or "all")
        )
    state.console.print(table)
    state.console.print(f"{len(readers)} readers")
