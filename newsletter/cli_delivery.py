"""The delivery commands of ``newsletter``: ``send`` and ``subscribers``.

They are registered on the group in ``cli.py``; like it, only this module prints.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from newsletter import delivery, pipeline
from newsletter.cli import State, _now, _parse_slugs, _print_collect, cli, pass_state
from newsletter.errors import NewsletterError
from newsletter.mailers import make_mailer
from newsletter.models import SubscriberStatus
from newsletter.roster import export_csv, import_csv
from newsletter.subscriptions import add_subscriber, erase_person, normalise_email


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
    second copy, except possibly the readers of the requests that were in flight.

    Example: newsletter send --dry-run
    """
    config = state.config
    console = state.console
    edition_day: date | None = day.date() if day is not None else None  # type: ignore[attr-defined]
    store = state.store()
    mailer = make_mailer(config)
    stop = threading.Event()
    try:
        if collect and edition_day is None:
            _print_collect(console, pipeline.collect_all(config, store, now=_now()))
        # SIGTERM or Ctrl-C: finish and record the requests in flight, then stop (as `run` does)
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        with _progress_bar(console) as progress:
            report = delivery.send_edition(
                config,
                store,
                mailer,
                now=_now,
                day=edition_day,
                dry_run=dry_run,
                retry_failed=retry_failed,
                progress=progress,
                should_stop=stop.is_set,
            )
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    finally:
        mailer.close()
        store.close()
    what = "Dry run" if report.dry_run else "Sent"
    console.print(
        f"{what}: edition of {report.edition_date}: {report.sent} sent, {report.failed} failed, "
        f"{report.skipped} skipped, {report.already_sent} already sent before "
        f"({report.seconds:.1f} s, through {mailer.name})"
    )
    if report.stopped:
        console.print(
            "Stopped by a signal: the requests in flight were finished and recorded, and nobody "
            "was sent twice. To finish the edition, run: newsletter send"
            + (f" --date {report.edition_date}" if edition_day else "")
        )
        return
    if report.failed:
        _print_failures(state, report.edition_date)
        noun = "delivery" if report.failed == 1 else "deliveries"
        raise NewsletterError(
            f"{report.failed} {noun} failed",
            hint="`newsletter status` counts them; try again with: newsletter send --retry-failed",
        )


@contextlib.contextmanager
def _progress_bar(
    console: Console, what: str = "Sending"
) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on a terminal (None elsewhere), as a (done, total) progress callback."""
    if not console.is_terminal:
        yield None
        return
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_failures(state: State, day: date, shown: int = 20) -> None:
    """The failed readers by address, with the reason, the first few."""
    store = state.store()
    try:
        ref = store.edition_ref(day)
        failed = store.failed_deliveries(ref[0], limit=shown + 1) if ref else []
    finally:
        store.close()
    for item in failed[:shown]:
        state.console.print(f"  failed: {escape(item.email)}: {escape(item.error)}")
    if len(failed) > shown:
        state.console.print("  ... and more: `newsletter status` counts them")


@cli.group()
def subscribers() -> None:
    """Manage readers from the shell: add, import, export, list, remove.

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
            status=SubscriberStatus.PENDING if pending else SubscriberStatus.CONFIRMED,
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
    type=click.Choice([s.value for s in SubscriberStatus]),
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


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@pass_state
def subscribers_import(state: State, csv_file: Path) -> None:
    """Import readers from a CSV file: email,name,sectors (UTF-8, with or without BOM).

    Known readers are updated, not duplicated; readers who unsubscribed or were removed are
    never brought back; each rejected line is reported with its number and reason.

    Example: newsletter subscribers import readers.csv
    """
    config = state.config
    store = state.store()
    try:
        with _progress_bar(state.console, "Importing (bytes)") as progress:
            report = import_csv(
                store, csv_file, known_sectors=config.sector_slugs, now=_now(), progress=progress
            )
    finally:
        store.close()
    console = state.console
    for number, reason in report.rejected:
        console.print(f"[red]line {number}:[/] {escape(reason)}")
    for number, reason in report.skipped:
        console.print(f"[yellow]line {number}:[/] {escape(reason)}")
    console.print(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped, {len(report.rejected)} rejected"
    )


@subscribers.command("export")
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]))
@pass_state
def subscribers_export(state: State, status: str | None) -> None:
    """Print readers as CSV (email,name,sectors,status) on standard output.

    Example: newsletter subscribers export --status confirmed > readers.csv
    """
    store = state.store()
    try:
        export_csv(store, sys.stdout, status=status)
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
        found = erase_person(state.config, store, address, now=_now())
    finally:
        store.close()
    if found:
        state.console.print(f"Erased {escape(address)}; it is suppressed from now on")
    else:
        state.console.print(f"{escape(address)} was not a reader; it is suppressed from now on")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@pass_state
def serve(state: State, host: str, port: int) -> None:
    """Run the readers' web app: sign-up, confirm, preferences, unsubscribe.

    Put it behind your HTTPS proxy and set publication.base_url to its public address.

    Example: newsletter serve --port 8000
    """
    import uvicorn

    from newsletter.web.app import create_app

    config = state.config
    store = state.store()
    mailer = make_mailer(config)
    state.console.print(f"Serving {config.publication.name} on http://{host}:{port}/subscribe")
    try:
        # X-Forwarded-For is believed only from signup.trusted_proxies, by the app itself
        app = create_app(config, store, mailer, now=_now)
        uvicorn.run(app, host=host, port=port, proxy_headers=False)
    finally:
        mailer.close()
        store.close()


@cli.command("run")
@pass_state
def run_scheduler(state: State) -> None:
    """Run the scheduler in the foreground: collect every N minutes, send daily at send_at.

    Logs one line per job run. SIGTERM or Ctrl-C finishes the requests in flight and exits.
    Only one scheduler may run per database.

    Example: newsletter --config /etc/newsletter/config.yaml run
    """
    import logging

    from newsletter import scheduler

    logging.getLogger("newsletter.run").setLevel(logging.INFO)
    config = state.config
    schedule = config.file.schedule
    days = ", ".join(schedule.weekdays) or "every day"
    state.console.print(
        f"Scheduler for {config.publication.name}: collect every "
        f"{schedule.collect_every_minutes:g} minutes; send at {schedule.send_at} "
        f"{schedule.timezone}, {days}"
    )
    runner = scheduler.Runner(
        config,
        open_store=state.store,
        make_mailer=lambda: make_mailer(config),
        clock=lambda: datetime.now(UTC),  # the wall clock: NEWSLETTER_NOW would stop it
    )
    scheduler.run(runner, say=lambda line: state.console.print(escape(line)))
