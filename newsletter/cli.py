"""The ``newsletter`` command. Builds the real collaborators; the only place that prints or exits.

Exit codes: 0 success, 1 a ``NewsletterError`` (``Error:`` and ``Hint:`` on stderr), 2 usage.
"""

from __future__ import annotations

import json
import logging
import os
import webbrowser
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from newsletter import __version__, pipeline, prepared
from newsletter.config import Config, load_config
from newsletter.errors import NewsletterError
from newsletter.models import FetchOutcome
from newsletter.scaffold import init_publication
from newsletter.store import Store

DEFAULT_CONFIG = "config.yaml"


class UserError(click.ClickException):
    """A ``NewsletterError`` on its way out: ``Error: ...`` then ``Hint: ...``, exit 1."""

    exit_code = 1

    def __init__(self, error: NewsletterError) -> None:
        text = error.message + (f"\nHint: {error.hint}" if error.hint else "")
        super().__init__(text)


class NewsletterGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            raise UserError(exc) from None


class State:
    """What every command needs, made on first use so that --help works without a config."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
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


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="NEWSLETTER_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Config file (or set NEWSLETTER_CONFIG).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, verbose: bool) -> None:
    """A daily industry-insights email built from RSS/Atom feeds, grouped by sector."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = State(config_path)


@cli.command()
@click.option("--retry-gone", is_flag=True, help="Fetch feeds that answered 410 Gone again.")
@pass_state
def collect(state: State, retry_gone: bool) -> None:
    """Fetch every feed once and store new stories.

    Prints one line per feed: new stories and stories in the feed, "not modified", or the error.
    Exits 1 only when every feed failed.

    Example: newsletter --config examples/demo/config.yaml collect
    """
    config = state.config
    store = state.store()
    try:
        report = pipeline.collect_all(config, store, now=_now(), retry_gone=retry_gone)
    finally:
        store.close()
    _print_collect(state.console, report)
    results = report.results
    if results and all(r.status in {FetchOutcome.FAILED, FetchOutcome.GONE} for r in results):
        raise NewsletterError(
            f"none of the {len(results)} feeds could be collected",
            hint="Check the network and the feed URLs in config.yaml; the lines above say why.",
        )


@cli.command()
@click.option(
    "--since", type=click.FloatRange(min=0), help="Only stories published in the last HOURS."
)
@click.option("--sector", "sector", metavar="SLUG", help="Only stories that fit this sector.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--explain", "explain", metavar="ID", help="Show why one story got its sectors.")
@pass_state
def stories(
    state: State, since: float | None, sector: str | None, as_json: bool, explain: str | None
) -> None:
    """List stored stories with their sectors, best first; --explain ID shows the matched
    phrases and weights, exclusions and the off-topic score behind one story's sectors.

    Example: newsletter stories --since 24 --sector oil-gas --json
    """
    if explain is not None:
        from newsletter.cli_rules import print_explanation

        print_explanation(state, explain)
        return
    config = state.config
    if sector is not None:
        _check_slugs(config, [sector], "--sector")
    store = state.store()
    try:
        cutoff = _now() - timedelta(hours=since) if since is not None else None
        items = prepared.load_stories(config, store, since=cutoff)
    finally:
        store.close()
    if sector is not None:
        items = [s for s in items if sector in s.sectors]
    if as_json:
        payload = [
            {
                "id": s.id,
                "title": s.title,
                "url": s.url,
                "source": s.source,
                "published": s.published.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "summary": s.summary,
                "sectors": list(s.sectors),
            }
            for s in items
        ]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    table = Table(show_lines=False)
    table.add_column("published (UTC)", no_wrap=True)
    table.add_column("source")
    table.add_column("sectors")
    table.add_column("title")
    for s in items:
        table.add_row(
            f"{s.published:%Y-%m-%d %H:%M}",
            escape(s.source),
            escape(", ".join(s.sectors) or "—"),
            escape(s.title),
        )
    state.console.print(table)
    state.console.print(f"{len(items)} stories")


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="preview",
    show_default=True,
    help="Folder for digest.html and digest.txt.",
)
@click.option("--sectors", metavar="SLUG,...", help="Preview one reader's choice of sectors.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@click.option(
    "--collect/--no-collect",
    default=True,
    show_default=True,
    help="Fetch the feeds first, as the daily send does.",
)
@click.option("--serve", is_flag=True, help="Serve a live preview page that follows your edits.")
@click.option("--send-to", metavar="ADDRESS", help="Also send one copy, marked as a test.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: address.")
@click.option("--port", default=8001, show_default=True, help="With --serve: port.")
@pass_state
def preview(
    state: State,
    out_dir: Path,
    sectors: str | None,
    open_browser: bool,
    collect: bool,
    serve: bool,
    host: str,
    port: int,
    send_to: str | None,
) -> None:
    """Build today's edition and write it to files without sending.

    With --serve, show it instead on a local page (desktop and phone widths side by side) that
    reloads when a template or the config changes.

    Example: newsletter --config examples/demo/config.yaml preview --sectors oil-gas,evs-battery
    """
    config = state.config
    chosen = _parse_slugs(config, sectors)
    console = state.console
    store = state.store()
    try:
        now = _now()
        if collect:
            _print_collect(console, pipeline.collect_all(config, store, now=now))
        if serve:
            store.close()
            _serve_preview(state, chosen, host, port, open_browser)
            return
        result = pipeline.preview(config, store, out_dir=out_dir, now=now, sectors=chosen)
    finally:
        store.close()
    built = result.built
    if result.email is None or result.html_path is None or result.text_path is None:
        console.print(f"\n[yellow]No edition for {built.edition_date}:[/] {escape(built.reason)}")
        return
    if built.overrides_file is not None:
        console.print(f"\nEditor's overrides: {escape(str(built.overrides_file))}")
    console.print(f"\n[bold]Subject:[/] {escape(result.email.subject)}")
    for section in result.sections:
        more = f" (+{len(section.more)} more)" if section.more else ""
        count = len(section.stories)
        console.print(
            f"  {escape(section.sector.name)}: {count} {'story' if count == 1 else 'stories'}{more}"
        )
    console.print(f"[bold]Preheader:[/] {escape(result.email.preheader)}")
    if result.email.trimmed:
        console.print(
            f"[yellow]Trimmed {result.email.trimmed} headlines to stay under "
            f"{config.file.email.max_kb} KB[/] (Gmail clips larger emails)"
        )
    for path in (result.html_path, result.text_path):
        console.print(f"Wrote {escape(str(path))} ({_size(path.stat().st_size)})")
    if send_to:
        _send_test(state, result, send_to)
    if open_browser:
        webbrowser.open(result.html_path.resolve().as_uri())


def _print_collect(console: Console, report: pipeline.CollectReport) -> None:
    for r in report.results:
        name = escape(r.feed.name)
        if r.status == FetchOutcome.OK:
            changed = f", {r.updated} updated" if r.updated else ""
            console.print(f"[green]ok[/]     {name}: {r.new} new{changed}, {r.found} in feed")
        elif r.status == FetchOutcome.NOT_MODIFIED:
            console.print(f"[green]ok[/]     {name}: not modified")
        elif r.status == FetchOutcome.GONE:
            console.print(
                f"[red]gone[/]   {name}: {escape(r.error or '')}; remove it from the config,"
                " or try again with --retry-gone"
            )
        else:
            console.print(f"[red]failed[/] {name}: {escape(r.error or 'unknown error')}")
        if r.moved_to:
            console.print(
                f"       [yellow]moved permanently[/] to {escape(r.moved_to)}: now fetched from"
                " there; update the feed's url in the config"
            )
        for warning in r.warnings:
            console.print(f"       [yellow]warning:[/] {escape(warning)}")
    results = report.results
    failed = sum(r.status in {FetchOutcome.FAILED, FetchOutcome.GONE} for r in results)
    new = sum(r.new for r in results)
    summary = f"{len(results)} feeds, {new} new stories"
    if failed:
        summary += f", [red]{failed} failed[/]"
    if report.pruned:
        summary += f", {report.pruned} old stories pruned"
    console.print(f"{summary} ({report.seconds:.1f} s)")


def _send_test(state: State, result: pipeline.PreviewResult, address: str) -> None:
    from newsletter.delivery import send_test
    from newsletter.mailers import make_mailer
    from newsletter.subscriptions import normalise_email

    assert result.email is not None
    mailer = make_mailer(state.config)
    try:
        message_id = send_test(
            state.config,
            mailer,
            result.email,  # the preview copy: its links already point at the preview reader
            normalise_email(address),
            day=result.built.edition_date,
        )
    finally:
        mailer.close()
    state.console.print(
        f"Sent a test copy to {escape(address)} through {mailer.name} ({message_id})"
    )


def _serve_preview(
    state: State, chosen: tuple[str, ...], host: str, port: int, open_browser: bool
) -> None:
    import uvicorn

    from newsletter.web.preview import create_app

    app = create_app(state.config_path, sectors=chosen, now=_now)
    url = f"http://{host}:{port}/"
    state.console.print(f"\nLive preview at {url} (edit the templates or the config; Ctrl-C stops)")
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@pass_state
def init(state: State, folder: Path) -> None:
    """Start a new publication in FOLDER: a commented config.yaml and templates to edit.

    Example: newsletter init my-briefing && newsletter --config my-briefing/config.yaml preview
    """
    written = init_publication(folder)
    for path in written:
        state.console.print(f"Wrote {escape(str(path))}")
    state.console.print(
        f"Next: add your feeds to {escape(str(written[0]))}, then run "
        f"newsletter --config {escape(str(written[0]))} preview"
    )


def _parse_slugs(config: Config, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    slugs = tuple(s.strip() for s in value.split(",") if s.strip())
    _check_slugs(config, slugs, "--sectors")
    return slugs


def _check_slugs(config: Config, slugs: Sequence[str], option: str) -> None:
    unknown = [s for s in slugs if s not in config.sector_slugs]
    if unknown:
        raise click.BadParameter(
            f"unknown sector {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(config.sector_slugs)}",
            param_hint=option,
        )


def _size(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


def _now() -> datetime:
    override = os.environ.get("NEWSLETTER_NOW")  # for reproducible demos and tests
    if not override:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(override)
    except ValueError:
        raise NewsletterError(
            f"NEWSLETTER_NOW: {override!r} is not an ISO 8601 date and time",
            hint="Use a form like 2026-11-25T06:00:00Z, or unset NEWSLETTER_NOW.",
        ) from None
    if when.tzinfo is None:
        raise NewsletterError(
            f"NEWSLETTER_NOW: {override!r} has no time zone",
            hint="Add one, e.g. 2026-11-25T06:00:00Z or 2026-11-25T07:00:00+01:00.",
        )
    return when.astimezone(UTC)


def main() -> None:
    cli(prog_name="newsletter")


# The other commands live in their own modules; importing them registers them on `cli`.
from newsletter import cli_delivery, cli_rules, cli_status  # noqa: E402, F401
