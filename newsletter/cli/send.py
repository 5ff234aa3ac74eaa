"""``newsletter send``: the day's edition through the ledger, with a progress bar."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import click
from rich.markup import escape

from newsletter import flows
from newsletter.cli.common import (
    State,
    check_preflight,
    current_time,
    pass_state,
    plural,
    print_collect,
    print_prose,
    progress_bar,
)
from newsletter.cli.stopping import STOP
from newsletter.config import Config
from newsletter.delivery import preflight
from newsletter.delivery.mailers import make_mailer
from newsletter.errors import DeliveryError
from newsletter.models import EditionKind, SendReport
from newsletter.store import Store


@click.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The edition's date.")
@click.option("--dry-run", is_flag=True, help="Everything but sending (SendGrid: sandbox mode).")
@click.option(
    "--collect/--no-collect",
    default=True,
    show_default=True,
    help="Fetch the feeds first (for today's edition: another day's is stored already).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Send again to readers whose delivery failed (and finish an interrupted send); "
    "readers who joined since wait for a plain send.",
)
@click.option(
    "--due",
    is_flag=True,
    help="Only the readers whose local delivery hour has come (one pass of `newsletter run`): "
    "daily and weekly editions, each built at its first delivery.",
)
@pass_state
def send(
    state: State, day: object, dry_run: bool, collect: bool, retry_failed: bool, due: bool
) -> None:
    """Deliver the day's edition to every confirmed daily reader now, exactly once each; with
    --due, only to the readers whose hour has come, as the scheduler does.

    Run it again after a crash or a failure: it finishes the edition without sending anyone a
    second copy, except possibly the readers of the requests that were in flight.

    Example: newsletter send --dry-run
    """
    if due:
        if day is not None or dry_run or retry_failed:
            raise click.UsageError("--due goes alone: without --date, --dry-run, --retry-failed")
        with STOP.caught() as stop:
            _send_due(state, collect, stop)
        return
    with STOP.caught() as stop:  # SIGTERM or Ctrl-C, wherever it comes: a clean stop
        report = _send(state, day, dry_run, collect, retry_failed, stop)
    console = state.console
    if report is None:
        console.print(
            "Stopped by a signal before sending: nothing was sent. To send the edition, run: "
            "newsletter send"
        )
        return
    console.print(_summary(report, _through(state.config, report.edition_date)))
    _say_unapproved(state, report.edition_date, dry_run)
    if report.stopped:
        console.print(
            "Stopped by a signal: the requests in flight were finished and recorded, nothing "
            "new was started, and nobody was sent twice. To finish the edition, run: "
            "newsletter send" + (f" --date {report.edition_date}" if day is not None else "")
        )
        return
    if report.failed:
        _print_failures(state, report.edition_date)
        noun = "delivery" if report.failed == 1 else "deliveries"
        raise DeliveryError(
            f"{report.failed} {noun} failed",
            hint="`newsletter status` counts them; try again with: newsletter send --retry-failed",
        )


def _say_unapproved(state: State, day: date, dry_run: bool) -> None:
    """With ``schedule.require_approval``, a send from the shell of a day nobody approved says
    so: the scheduled send would have waited for an editor; this one does not."""
    if state.config.file.schedule.require_approval is None:
        return
    from newsletter.flows.desk import Waiting, gate

    if gate(state.config, day, current_time()).state is not Waiting.APPROVED:
        went = "would go" if dry_run else "went"
        print_prose(
            state.console,
            f"[yellow]Note:[/] the edition of {day} has no editor's approval. It {went} "
            "anyway: a send from the shell is the operator's decision (the scheduled send "
            "waits for the approval, schedule.require_approval).",
        )


def _send_due(state: State, collect: bool, stop: threading.Event) -> None:
    """One pass of the scheduler's send: each edition to the readers whose hour has come."""
    from newsletter.flows.buckets import Pass, send_due

    config = state.config
    if preflight.needed(config, dry_run=False):
        check_preflight(config)
    store = state.store()
    try:
        run = Pass(
            now=current_time,
            should_stop=stop.is_set,
            claim_clock=lambda: datetime.now(UTC),
            before_freeze=(lambda: _collect(state, store, stop)) if collect else None,
        )
        reports = send_due(config, store, lambda: make_mailer(config), run)
    finally:
        store.close()
    for report in reports:
        state.console.print(_summary(report, _through(config, report.edition_date)))
    for line in run.said:  # what waits, and why (the log's warnings are on stderr already)
        state.console.print(escape(line.removeprefix("send: ")))
    if not reports and not run.spoke:  # (a warning said why nothing went: not "nothing due")
        state.console.print(
            "Nothing due: no reader's delivery hour has come with an edition still to send to "
            "them. `newsletter status` lists the buckets still to send."
        )
    failed = sum(r.failed for r in reports)
    if failed:
        raise DeliveryError(
            f"{plural(failed, 'delivery', 'deliveries')} failed",
            hint="`newsletter status` counts them; try again with: newsletter send --retry-failed",
        )


def _collect(state: State, store: Store, stop: threading.Event) -> None:
    collected = flows.collect_all(state.config, store, now=current_time(), should_stop=stop.is_set)
    print_collect(state.console, collected)


def _send(
    state: State,
    day: object,
    dry_run: bool,
    collect: bool,
    retry_failed: bool,
    stop: threading.Event,
) -> SendReport | None:
    """The send itself; None when a stop came before anything was sent."""
    config = state.config
    if stop.is_set():
        return None
    if preflight.needed(config, dry_run=dry_run):
        check_preflight(config)
    edition_day: date | None = day.date() if day is not None else None  # type: ignore[attr-defined]
    store = state.store()
    mailer = make_mailer(config)
    try:
        # an edition of another day is stored or cannot be built: no collect changes it
        today = flows.edition_date_for(config, current_time())
        if collect and edition_day in (None, today):
            collected = flows.collect_all(
                config, store, now=current_time(), should_stop=stop.is_set
            )
            print_collect(state.console, collected)
        if stop.is_set():
            return None
        with progress_bar(state.console) as progress:
            return flows.send_edition(
                config,
                store,
                mailer,
                now=current_time,
                day=edition_day,
                dry_run=dry_run,
                retry_failed=retry_failed,
                progress=progress,
                should_stop=stop.is_set,
                claim_clock=lambda: datetime.now(UTC),  # real time passes, whatever NEWSLETTER_NOW
            )
    finally:
        mailer.close()
        store.close()


def _through(config: Config, day: date) -> str:
    """The mailer a send went through: the backend, and the outbox's folder of the day."""
    backend = config.file.delivery.backend
    return f"{backend} {config.outbox_dir / day.isoformat()}" if backend == "outbox" else backend


def _summary(report: SendReport, through: str) -> str:
    """One line: "Sent: edition of D: 3 readers sent, 1 failed, ..."; a dry run says what it
    would have sent."""
    tail = f"({report.seconds:.1f} s, through {through})"
    which = f"{'weekly ' * (report.kind == EditionKind.WEEKLY)}edition of {report.edition_date}"
    if report.dry_run:
        return (
            f"Dry run: {which}: would send to "
            f"{plural(report.sent, 'reader')}, {report.failed} would fail, {report.skipped} "
            f"skipped, {report.already_sent} already sent before; nothing was sent {tail}"
        )
    return (
        f"Sent: {which}: {plural(report.sent, 'reader')} sent, "
        f"{report.failed} failed, {report.skipped} skipped, {report.already_sent} already sent "
        f"before {tail}"
    )


def _print_failures(state: State, day: date, shown: int = 20) -> None:
    """The failed readers by address, with the reason, the first few."""
    store = state.store()
    try:
        ref = store.editions.edition_ref(day)
        failed = store.ledger.failed_deliveries(ref.id, limit=shown + 1) if ref else []
    finally:
        store.close()
    for item in failed[:shown]:
        state.console.print(f"  failed: {escape(item.email)}: {escape(item.error)}")
    if len(failed) > shown:
        state.console.print("  ... and more: `newsletter status` counts them")
