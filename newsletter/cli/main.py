"""The ``newsletter`` command. Builds the real collaborators; the only place that prints or exits.

Exit codes: 0 success, 1 a ``NewsletterError`` (``Error:`` and ``Hint:`` on stderr), 2 usage.
The group is here; each command lives in a module of its own and is added below.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from newsletter import __version__
from newsletter.cli import collect, db, events, preview, readers, rules, send, serve, status
from newsletter.cli.common import (
    DEFAULT_CONFIG,
    NewsletterGroup,
    State,
)
from newsletter.cli.stopping import STOP

# commands for which SIGTERM and Ctrl-C ask for a clean stop (the others end as usual)
STOPPABLE = frozenset({"send", "run"})


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
@click.option("--debug", is_flag=True, help="Show the traceback behind an error.")
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, verbose: bool, debug: bool) -> None:
    """A daily industry-insights email built from RSS/Atom feeds, grouped by sector."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = State(config_path, debug=debug)
    if ctx.invoked_subcommand not in STOPPABLE:
        STOP.release()


for command in (
    collect.collect,
    collect.stories,
    preview.preview,
    preview.init,
    send.send,
    readers.subscribers,
    serve.serve,
    serve.embed,
    serve.run_scheduler,
    rules.rules,
    status.status,
    events.stats_command,
    events.bounces,
    db.db,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="newsletter")
