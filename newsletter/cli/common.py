"""What the command modules share: the state every command gets, the clock, sector options,
and the collect report. Only the modules of this package print or exit."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Column, Table

from newsletter.config import Config, load_config
from newsletter.config.suggest import did_you_mean
from newsletter.errors import ConfigError, NewsletterError, StoreError
from newsletter.models import FetchOutcome
from newsletter.store import Store

if TYPE_CHECKING:
    from newsletter.flows.collect import CollectReport, FeedResult

DEFAULT_CONFIG = "config.yaml"
FILE_SYSTEM_EXIT = StoreError.exit_code  # the database or the file system unavailable
PIPE_CLOSED_EXIT = 128 + 13  # SIGPIPE's, as other Unix tools end when `| head` stops reading
PORT = click.IntRange(0, 65535)  # a port to listen on (0: any free one)


class UserError(click.ClickException):
    """A ``NewsletterError`` on its way out: ``Error: ...`` then ``Hint: ...``, and the exit
    code of its family (``errors.py``; ``user_error`` picks the class that carries it)."""

    exit_code = 1

    def __init__(self, error: NewsletterError) -> None:
        text = error.message + (f"\nHint: {error.hint}" if error.hint else "")
        super().__init__(text)


# one class per exit code: click reads the code from the exception's class
_FAMILIES: dict[int, type[UserError]] = {
    code: type(f"UserError{code}", (UserError,), {"exit_code": code}) for code in range(1, 6)
}


def user_error(error: NewsletterError, *, exit_code: int | None = None) -> UserError:
    return _FAMILIES[error.exit_code if exit_code is None else exit_code](error)


class NewsletterGroup(click.Group):
    """Turns the errors a user can act on into ``Error:`` and ``Hint:`` (the traceback
    only with ``--debug``): ours, and a file system's (a full disk, a missing folder)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            done = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe found here, not at the interpreter's exit
            return done
        except BrokenPipeError:  # the output's reader stopped reading (`| head`): no error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing to flush
            raise SystemExit(PIPE_CLOSED_EXIT) from None
        except NewsletterError as exc:
            _debug(ctx, exc)
            raise user_error(exc) from None
        except OSError as exc:
            _debug(ctx, exc)
            raise user_error(file_error(exc), exit_code=FILE_SYSTEM_EXIT) from None


def file_error(exc: OSError) -> NewsletterError:
    """A file system's error in our words: what could not be done where, and what to check."""
    where = f" {exc.filename}" if exc.filename else ""
    return NewsletterError(
        f"cannot use{where}: {exc.strerror or exc}",
        hint="Check that the disk has room and that the path exists and may be written; "
        "`newsletter --debug ...` shows where it happened.",
    )


def _debug(ctx: click.Context, exc: BaseException) -> None:
    state = ctx.obj
    if isinstance(state, State) and state.debug:
        traceback.print_exception(exc, file=sys.stderr)
    logging.getLogger("newsletter").debug("the command failed", exc_info=exc)


class State:
    """What every command needs, made on first use so that --help works without a config."""

    def __init__(self, config_path: Path, *, debug: bool = False) -> None:
        self.config_path = config_path
        self.debug = debug  # tracebacks behind each error
        self._config: Config | None = None
        self.console = Console(highlight=False, soft_wrap=True)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def store(self) -> Store:
        config = self.config
        return Store.open(config.database_url, privacy_key=config.privacy_key())


pass_state = click.make_pass_decorator(State)


def current_time() -> datetime:
    override = os.environ.get("NEWSLETTER_NOW")  # for reproducible demos and tests
    if not override:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(override)
    except ValueError:
        raise ConfigError(
            f"NEWSLETTER_NOW: {override!r} is not an ISO 8601 date and time",
            hint="Use a form like 2026-11-25T06:00:00Z, or unset NEWSLETTER_NOW.",
        ) from None
    if when.tzinfo is None:
        raise ConfigError(
            f"NEWSLETTER_NOW: {override!r} has no time zone",
            hint="Add one, e.g. 2026-11-25T06:00:00Z or 2026-11-25T07:00:00+01:00.",
        )
    return when.astimezone(UTC)


def parse_slugs(config: Config, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    slugs = tuple(s.strip() for s in value.split(",") if s.strip())
    check_slugs(config, slugs, "--sectors")
    return slugs


def check_slugs(config: Config, slugs: Sequence[str], option: str) -> None:
    unknown = [s for s in slugs if s not in config.sector_slugs]
    if unknown:
        near = "".join(did_you_mean(s, config.sector_slugs) for s in unknown[:1])
        raise click.BadParameter(
            f"unknown sector {', '.join(map(repr, unknown))}{near} "
            f"(known: {', '.join(config.sector_slugs)})",
            param_hint=option,
        )


def make_table(*columns: Column | str, title: str | None = None) -> Table:
    """A table as every command prints one: a rule under the header, two spaces between the
    columns and no frame, so that eight columns of figures fit an 80-column terminal.

    Give a column whose text must never be cut (a date, an id, an address) ``no_wrap=True``;
    the others wrap at word boundaries, a word longer than its column folded, never cut.
    """
    made = [Column(c) if isinstance(c, str) else c for c in columns]
    for column in made:
        if not column.no_wrap:
            column.overflow = "fold"
    return Table(
        *made,
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def print_prose(console: Console, text: str) -> None:
    """A sentence or a paragraph, wrapped at word boundaries to the terminal's width."""
    console.print(text, soft_wrap=False)


def listening(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` for a web app, or an error that says what to do."""
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        raise NewsletterError(
            f"{host}:{port} is already in use"
            if busy
            else f"cannot listen on {host}:{port}: {exc}",
            hint=(
                f"Another program (or another newsletter serve) listens there: stop it, or "
                f"choose another port with --port {port + 1}."
                if busy
                else "Check --host (an address of this machine) and --port (above 1023 unless "
                "run as root)."
            ),
        ) from None


def print_unmatched(console: Console, lines: Sequence[str]) -> None:
    """The editor's overrides that change nothing, one line each, in yellow."""
    for line in lines:
        console.print(f"  [yellow]{escape(line)}[/]", highlight=False)


def plural(count: int, one: str, many: str | None = None) -> str:
    """ "1 reader", "2 readers", "1 story", "3 stories"."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def file_size(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


def print_collect(console: Console, report: CollectReport) -> None:
    """One line per feed (a failing one with its host and the reason), then the totals; one
    short paragraph instead when no feed could be reached at all (no network)."""
    results = report.results
    if not_reached(results):
        print_prose(console, offline_paragraph(results))
        return
    for r in results:
        _print_result(console, r)
    failed = sum(r.status in {FetchOutcome.FAILED, FetchOutcome.GONE} for r in results)
    left = sum(r.status == FetchOutcome.NOT_FETCHED for r in results)
    new = sum(r.new for r in results)
    summary = f"{len(results)} feeds, {new} new stories"
    if failed:
        summary += f", [red]{failed} failed[/]"
    if left:
        summary += f", [yellow]{left} left for the next collection[/] (stopped)"
    if report.pruned:
        summary += f", {report.pruned} old stories pruned"
    console.print(f"{summary} ({report.seconds:.1f} s)")


def _print_result(console: Console, r: FeedResult) -> None:
    name = escape(r.feed.name)
    where = f"{name} ({escape(host)})" if (host := _host(r.feed.location)) else name
    if r.status == FetchOutcome.OK:
        changed = f", {r.updated} updated" if r.updated else ""
        console.print(f"[green]ok[/]     {name}: {r.new} new{changed}, {r.found} in feed")
    elif r.status == FetchOutcome.NOT_MODIFIED:
        console.print(f"[green]ok[/]     {name}: not modified")
    elif r.status == FetchOutcome.NOT_FETCHED:
        console.print(f"[yellow]left[/]   {name}: not fetched, the collection was stopped")
        return
    elif r.status == FetchOutcome.WAITING:
        console.print(f"[yellow]wait[/]   {where}: {escape(r.error or '')}")
        return
    elif r.status == FetchOutcome.GONE:
        console.print(
            f"[red]gone[/]   {where}: {escape(r.error or '')}; remove it from the config,"
            " or try again with --retry-gone"
        )
    else:
        console.print(f"[red]failed[/] {where}: {escape(r.error or 'unknown error')}")
    if r.moved_to:
        console.print(
            f"       [yellow]moved permanently[/] to {escape(r.moved_to)}: now fetched from"
            " there; update the feed's url in the config"
        )
    for warning in r.warnings:
        console.print(f"       [yellow]warning:[/] {escape(warning)}")


def _host(location: str) -> str:
    """A web feed's host (and port), never the user or password an address may hold."""
    parts = urlsplit(location)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return ""
    return parts.hostname + (f":{parts.port}" if parts.port else "")


def not_reached(results: Sequence[FeedResult]) -> bool:
    """Every feed failed before reaching its host: most likely no network at all."""
    return bool(results) and all(r.status == FetchOutcome.FAILED and r.unreachable for r in results)


def offline_paragraph(results: Sequence[FeedResult]) -> str:
    """No feed could be reached, said once, with the reasons counted."""
    reasons = Counter((r.error or "").split(" (")[0] for r in results)
    counted = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common())
    likely = (
        "offline or unable to look up names"
        if "name not resolved" in reasons
        else "offline, or something (a firewall, a proxy) blocks its connections"
    )
    return (
        f"None of the {len(results)} feeds could be reached ({escape(counted)}): this "
        f"computer seems to be {likely}. Check its network connection, then run the command "
        "again; `newsletter status` lists each feed's last error."
    )


@contextlib.contextmanager
def progress_bar(
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


def check_preflight(config: Config) -> None:
    """Refuse a real send whose set-up would get the mail filtered or the links broken."""
    from newsletter.delivery import preflight

    found = preflight.problems(config)
    if found:
        listed = "\n".join(f"  - {p}" for p in found)
        raise ConfigError(
            f"{config.path}: not ready to mail readers through "
            f"{config.file.delivery.backend}:\n{listed}",
            hint="Fix each key named above (docs/deliverability.md walks through them), or try "
            "the send with --dry-run first.",
        )
