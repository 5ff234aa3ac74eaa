"""``newsletter status``: feed health, recent editions and the scheduler's next runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Column

from newsletter.cli.common import State, current_time, make_table, pass_state, print_prose
from newsletter.config import Config
from newsletter.delivery import stats
from newsletter.flows.buckets import buckets
from newsletter.models import DeliveryStatus, EditionKind, FeedStatus
from newsletter.readers.timing import Due, describe
from newsletter.records import EditionSummary, FeedHealth, LockHolder


@click.command()
@pass_state
def status(state: State) -> None:
    """Show each feed's health (last success, last error, failures, recent stories), the
    recent editions with their delivery counts, and the scheduler's next runs.

    A feed failing for longer than collect.flag_failing_after_hours is flagged, and so is
    an edition of the last seven whose complaint rate is over 0.1 % or bounce rate over 2 %.

    Example: newsletter --config examples/demo/config.yaml status
    """
    config = state.config
    now = current_time()
    store = state.store()
    try:
        health = {h.url: h for h in store.feeds.feed_health(now=now)}
        editions = store.editions.recent_editions()
        warned = [
            w for s in store.events.edition_counts(last=7, weekly=True) for w in stats.warnings(s)
        ]
        holders = store.locks.lock_holders()
        due = buckets(config, store, now=now)
    finally:
        store.close()
    from newsletter.schedule.runner import next_runs

    runs = next_runs(config.database_url)
    console = state.console
    _print_feeds(state, health, now)
    _print_editions(console, editions)
    for warning in warned:
        console.print(f"[red]Warning:[/] {escape(warning)}")
    if runs:
        for item in runs:
            when = f"{item.at:%Y-%m-%d %H:%M:%S} UTC" if item.at else "paused"
            if item.job == "send" and item.at:  # the pass: what it will send next
                when = f"{due[0].at:%Y-%m-%d %H:%M:%S} UTC" if due else "nothing due"
                when = "due now (below)" if due and due[0].at <= now else when
            console.print(f"Next {item.job}: {when}")
    else:
        console.print("No scheduled runs yet: start the scheduler with `newsletter run`.")
    _print_buckets(state, due)
    gate = None
    if config.file.schedule.require_approval is not None:
        from newsletter.flows import desk
        from newsletter.flows.build import edition_date_for

        day = edition_date_for(config, now)
        gate = desk.gate(config, day, now).says()
        console.print(f"Approval of {day}'s edition: {escape(gate)}")
    _print_waiting(state, [d for d in due if d.at <= now], gate)
    _print_schedulers(console, config, holders, planned=bool(runs))


def _print_waiting(state: State, waiting: list[Due], gate: str | None) -> None:
    """The buckets whose hour came while their edition is not built yet: what they wait for."""
    for day, kind in dict.fromkeys((d.day, d.slot.kind) for d in waiting):
        mine = [d for d in waiting if (d.day, d.slot.kind) == (day, kind)]
        readers = sum(d.readers for d in mine)
        since = f"{mine[0].at:%H:%M} UTC" if mine[0].at.date() == day else f"{mine[0].at:%F %R} UTC"
        why = (
            escape(gate)
            if gate is not None and kind == EditionKind.DAILY
            else "the scheduler's next pass builds and sends it (or now: `newsletter send --due`)"
        )
        print_prose(
            state.console,
            f"[yellow]{readers:,} reader{'s' if readers != 1 else ''} due since {since} wait "
            f"for the {kind} edition of {day}:[/] {why}",
        )


def _print_schedulers(
    console: Console, config: Config, holders: list[LockHolder], *, planned: bool
) -> None:
    """Which process runs each of the scheduler's jobs, with its last heartbeat; or that none
    runs (``planned``: the next runs shown are the last one's)."""
    lease = timedelta(seconds=config.file.schedule.lease_seconds)
    wall = datetime.now(UTC)  # heartbeats are wall-clock times, whatever NEWSLETTER_NOW says
    for holder in holders:
        beat = _ago(holder.heartbeat_at, wall)
        silent = (
            " [red](silent past the lease: a standby takes over)[/]"
            if (wall - holder.heartbeat_at > lease)
            else ""
        )
        console.print(
            f"Scheduler ({escape(holder.name.removeprefix('run:'))}): {escape(holder.owner)}, "
            f"since {holder.started_at:%Y-%m-%d %H:%M} UTC, last heartbeat {beat}{silent}"
        )
    if planned and not any(h.name.startswith("run:") for h in holders):
        console.print(
            "No scheduler is running: the next runs above are the last one's plan. Start it "
            "with `newsletter run`."
        )


def _print_buckets(state: State, due: list[Due]) -> None:
    """The delivery buckets still to send of the editions in progress: when (UTC), which
    edition, how many readers, and their local time."""
    if not due:
        return
    schedule = state.config.file.schedule
    table = make_table(
        Column("due (UTC)", no_wrap=True),
        Column("edition", no_wrap=True),
        Column("readers", justify="right"),
        "local time",
        title="Buckets still to send",
    )
    for item in due[:12]:
        table.add_row(
            f"{item.at:%Y-%m-%d %H:%M}",
            f"{item.slot.kind} {item.day}",
            f"{item.readers:,}",
            escape(describe(item.slot, schedule)),
        )
    state.console.print(table)
    if len(due) > 12:
        state.console.print(f"... and {len(due) - 12} more buckets in the next day")


def _print_feeds(state: State, health: dict[str, FeedHealth], now: datetime) -> None:
    """The feeds' table, each feed's note under it (a line of its own, wrapped at words), and
    how many have failed for longer than the config allows."""
    config = state.config
    flag_after = timedelta(hours=config.file.collect.flag_failing_after_hours)
    table = make_table(
        "feed",
        *(Column(c, no_wrap=True) for c in ("status", "last success", "failures", "last 24 h")),
        title="Feeds",
    )
    notes: list[tuple[str, str]] = []
    flagged = 0
    for feed in config.feeds:
        h = health.get(feed.url)
        if h is None:
            table.add_row(escape(feed.name), "new", "never", "0", "0")
            notes.append((feed.name, "not fetched yet"))
            continue
        label, note, is_flagged = _feed_status(h, now, flag_after)
        flagged += is_flagged
        table.add_row(
            escape(feed.name),
            label,
            _ago(h.last_success, now),
            str(h.consecutive_failures),
            str(h.stories_last_day),
        )
        if note:
            notes.append((feed.name, note))
    state.console.print(table)
    for name, note in notes:
        print_prose(state.console, f"{escape(name)}: {escape(note)}")
    if flagged:
        print_prose(
            state.console,
            f"[red]{flagged} feed{'s' if flagged > 1 else ''} failing for more than "
            f"{config.file.collect.flag_failing_after_hours} hours:[/] check the URL, or remove "
            "the feed from the config.",
        )


def _print_editions(console: Console, editions: list[EditionSummary]) -> None:
    table = make_table(
        *(Column(c, no_wrap=True) for c in ("Date", "Status")),
        *(
            Column(c, no_wrap=True, justify="right")
            for c in ("Sent", "Failed", "Skipped", "Waiting")
        ),
        title="\nRecent editions",
    )
    for edition in editions:
        counts = edition.counts
        waiting = counts.get(DeliveryStatus.PENDING, 0) + counts.get(DeliveryStatus.CLAIMED, 0)
        weekly = " weekly" if edition.kind == EditionKind.WEEKLY else ""
        table.add_row(
            edition.edition_date.isoformat() + weekly,
            edition.status,
            str(counts.get(DeliveryStatus.SENT, 0)),
            str(counts.get(DeliveryStatus.FAILED, 0)),
            str(counts.get(DeliveryStatus.SKIPPED, 0)),
            str(waiting),
        )
    if not editions:
        table.add_row("none yet", "", "", "", "", "")
    console.print(table)


def _feed_status(h: FeedHealth, now: datetime, flag_after: timedelta) -> tuple[str, str, bool]:
    """(status label, note, flagged) for one feed."""
    if h.status == FeedStatus.GONE:
        note = (
            f"410 Gone {_ago(h.last_error_at, now)}: remove it from the config, "
            "or `collect --retry-gone`"
        )
        return "[red]gone[/]", note, False
    if h.consecutive_failures:
        since = now - (h.failing_since or h.last_error_at or now)
        if since >= flag_after:
            return f"[red bold]FAILING {_span(since)}[/]", h.last_error or "", True
        return "[yellow]failing[/]", h.last_error or "", False
    if h.current_url:
        return "[green]ok[/]", f"moved permanently to {h.current_url}: update the config", False
    return "[green]ok[/]", "", False


def _ago(when: datetime | None, now: datetime) -> str:
    return "never" if when is None else f"{_span(now - when)} ago"


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
