"""``newsletter stats`` (what readers did with each edition) and ``newsletter bounces import``
(the delivery status notifications in a bounce mailbox)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Column

from newsletter.cli.common import State, current_time, make_table, pass_state, print_prose
from newsletter.delivery import events, stats
from newsletter.errors import NewsletterError
from newsletter.models import EditionKind
from newsletter.records import EditionStats


@click.command("stats")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="One edition's date.")
@click.option(
    "--last",
    default=14,
    show_default=True,
    type=click.IntRange(1, 365),
    help="How many of the latest editions.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def stats_command(state: State, day: object, last: int, as_json: bool) -> None:
    """Per edition: sent, delivered, bounced, complaints, unsubscribes, unique opens and
    unique clicks, from SendGrid's events and bounce mailboxes; with --date, the edition's
    most-clicked stories and clicks per sector too.

    Opens and clicks need delivery.sendgrid.track_opens / track_clicks (off by default).

    Example: newsletter stats --last 7 --json
    """
    when: date | None = day.date() if day is not None else None  # type: ignore[attr-defined]
    store = state.store()
    try:
        found = stats.edition_stats(store, dates=[when] if when else None, last=last, weekly=True)
    finally:
        store.close()
    if when is not None and not found:
        raise NewsletterError(
            f"no edition of {when} in the store", hint="`newsletter status` lists the editions."
        )
    if as_json:
        click.echo(json.dumps([_as_json(s) for s in reversed(found)], indent=2))
        return
    figures = ("Sent", "Delivered", "Bounced", "Complaints", "Unsubs", "Opens*", "Clicks")
    table = make_table(
        Column("Date", no_wrap=True),
        *(Column(c, no_wrap=True, justify="right") for c in figures),
        title="Editions",
    )
    for s in reversed(found):
        table.add_row(
            f"{s.edition_date.isoformat()}{' weekly' * (s.kind == EditionKind.WEEKLY)}",
            *(str(n) for n in (s.sent, s.delivered, s.bounced, s.complaints, s.unsubscribes)),
            str(s.opens),
            str(s.clicks),
        )
    if not found:
        table.add_row("none yet", *[""] * 7)
    console = state.console
    console.print(table)
    print_prose(console, f"* {stats.OPENS_CAVEAT}")
    for s in found:
        for warning in stats.warnings(s):
            console.print(f"[red]Warning:[/] {escape(warning)}")
    if when is not None and found and found[0].stories:
        top = make_table(
            Column("Clicks", no_wrap=True, justify="right"),
            Column("Sector", no_wrap=True),
            "Story",
            title="\nMost clicked",
        )
        for story in found[0].stories:
            top.add_row(str(story.clicks), story.sector, escape(story.title))
        console.print(top)


def _as_json(s: EditionStats) -> dict[str, object]:
    return dict(
        date=s.edition_date.isoformat(),
        kind=s.kind.value,
        sent=s.sent,
        delivered=s.delivered,
        bounced=s.bounced,
        complaints=s.complaints,
        unsubscribes=s.unsubscribes,
        opens=s.opens,
        clicks=s.clicks,
        sectors=dict(s.sector_clicks),
        stories=[
            dict(url=t.url, title=t.title, sector=t.sector, clicks=t.clicks) for t in s.stories
        ],
    )


@click.group()
def bounces() -> None:
    """Bounces that come back by email (SMTP sending): set delivery.smtp.return_path to a
    mailbox you control, then import it.

    Example: newsletter bounces import ~/Maildir/.Bounces
    """


@bounces.command("import")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@pass_state
def bounces_import(state: State, path: Path) -> None:
    """Apply the delivery status notifications in a Maildir folder or an mbox file:
    permanent failures set the reader bounced (and suppress the address), temporary ones are
    counted (delivery.bounces.soft_limit in soft_days bounces the reader). Importing the same
    mailbox twice changes nothing the second time.

    Example: newsletter bounces import /var/mail/bounces
    """
    store = state.store()
    now = current_time()
    try:
        read, stored, applied, problems = events.import_bounces(
            state.config, store, events.read_mailbox(path), now=now
        )
    finally:
        store.close()
    for problem in problems:
        state.console.print(f"[yellow]Skipped[/] {escape(problem)}")
    state.console.print(
        f"Read {read} message{'s' if read != 1 else ''} from {escape(str(path))}: "
        f"{stored} new failure report{'s' if stored != 1 else ''}; "
        f"{applied.bounced} reader{'s' if applied.bounced != 1 else ''} set bounced."
    )
