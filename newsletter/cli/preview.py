"""``newsletter preview`` (files, a test copy, or the live page) and ``newsletter init``."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from newsletter import flows
from newsletter.cli.common import (
    PORT,
    State,
    current_time,
    file_size,
    listening,
    parse_slugs,
    pass_state,
    plural,
    print_collect,
    print_unmatched,
)
from newsletter.config import Config
from newsletter.delivery.mailers import make_mailer
from newsletter.errors import EditionError
from newsletter.flows.preview import PreviewResult
from newsletter.flows.preview import preview as write_preview
from newsletter.flows.scaffold import init_publication
from newsletter.readers.subscriptions import normalise_email


@click.command()
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
@click.option("--port", default=8001, show_default=True, type=PORT, help="With --serve: port.")
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
    chosen = parse_slugs(config, sectors)
    console = state.console
    store = state.store()
    try:
        now = current_time()
        if collect:
            print_collect(console, flows.collect_all(config, store, now=now))
        if serve:
            store.close()
            _serve_preview(state, chosen, host, port, open_browser)
            return
        result = write_preview(config, store, out_dir=out_dir, now=now, sectors=chosen)
    finally:
        store.close()
    built = result.built
    if result.email is None or result.html_path is None or result.text_path is None:
        raise EditionError(
            f"no edition for {built.edition_date}: {built.reason}",
            day=built.edition_date,
            hint=_no_edition_hint(built, config.file.digest.max_age_hours),
        )
    _print_result(console, config, result)
    if send_to:
        _send_test(state, result, send_to)
    if open_browser:
        webbrowser.open(result.html_path.resolve().as_uri())
    else:
        console.print(
            f"Next: open {escape(result.html_path.resolve().as_uri())} in a browser (or add "
            "--open); `newsletter review` says why each story is where it is."
        )


def _print_result(console: Console, config: Config, result: PreviewResult) -> None:
    """The files a preview wrote, with what the email holds and the day's overrides."""
    built, email = result.built, result.email
    assert email is not None and result.html_path and result.text_path  # (an edition)
    if built.overrides_file is not None:
        console.print(f"\nEditor's overrides: {escape(str(built.overrides_file))}")
        print_unmatched(console, built.unmatched)
    console.print(f"\n[bold]Subject:[/] {escape(email.subject)}")
    for name, count, extra in email.shown:  # as the email holds them, after trimming
        more = f" (+{extra} more)" if extra else ""
        console.print(f"  {escape(name)}: {plural(count, 'story', 'stories')}{more}")
    console.print(f"[bold]Preheader:[/] {escape(email.preheader)}")
    if email.trimmed:
        console.print(
            f"[yellow]Trimmed {plural(email.trimmed, 'headline')} to stay under "
            f"{config.file.email.max_kb} KB[/] (Gmail clips larger emails)"
        )
    for path in (result.html_path, result.text_path):
        console.print(f"Wrote {escape(str(path))} ({file_size(path.stat().st_size)})")


def _no_edition_hint(built: flows.Built, hours: int) -> str:
    """What to check next when there is no edition, by what the window held."""
    if not built.considered:
        return (
            f"Nothing was written. No story from the last {hours} hours is stored: check the "
            "feeds with `newsletter status` (each one's last error) and collect again "
            f"(`newsletter collect`); if the feeds are quiet, raise digest.max_age_hours ({hours})."
        )
    if not built.on_topic:
        return (
            f"Nothing was written. {plural(built.considered, 'story', 'stories')} from the last "
            f"{hours} hours, none of them in a sector: `newsletter stories --since {hours}` "
            "lists them, `newsletter stories --explain ID` shows why one fits no sector; the "
            "sectors' keywords are in the config."
        )
    return (
        "Nothing was written. Every story in a sector was in an earlier edition or dropped by "
        "the editor (the day's overrides file): collect again later (`newsletter collect`)."
    )


def _send_test(state: State, result: flows.PreviewResult, address: str) -> None:
    from newsletter.delivery.deliver import send_test

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

    with listening(host, port) as sock:
        app = create_app(state.config_path, sectors=chosen, now=current_time)
        url = f"http://{host}:{port}/"
        state.console.print(
            f"\nLive preview at {url} (edit the templates or the config; Ctrl-C stops)"
        )
        if open_browser:
            webbrowser.open(url)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


@click.command()
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
