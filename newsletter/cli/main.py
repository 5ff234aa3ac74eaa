"""The ``newsletter`` command. Builds the real collaborators; the only place that prints or exits.

Exit codes by family (``errors.py``): 0 done, 1 failures to retry or another problem, 2 usage,
3 configuration, 4 database or file system unavailable, 5 nothing to send today; an error
prints ``Error:`` and ``Hint:`` on stderr.
The group is here; each command lives in a module of its own and is added below.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import click

from newsletter import __version__
from newsletter.cli.common import (
    DEFAULT_CONFIG,
    NewsletterGroup,
    State,
)
from newsletter.cli.stopping import STOP

# commands for which SIGTERM and Ctrl-C ask for a clean stop (the others end as usual)
STOPPABLE = frozenset({"send", "run"})
# each command, loaded when it is used: a command imports only what it needs
COMMANDS = {
    "collect": "newsletter.cli.collect:collect",
    "stories": "newsletter.cli.collect:stories",
    "preview": "newsletter.cli.preview:preview",
    "init": "newsletter.cli.preview:init",
    "review": "newsletter.cli.review:review_command",
    "send": "newsletter.cli.send:send",
    "subscribers": "newsletter.cli.readers:subscribers",
    "serve": "newsletter.cli.serve:serve",
    "embed": "newsletter.cli.serve:embed",
    "run": "newsletter.cli.serve:run_scheduler",
    "rules": "newsletter.cli.rules:rules",
    "status": "newsletter.cli.status:status",
    "stats": "newsletter.cli.events:stats_command",
    "bounces": "newsletter.cli.events:bounces",
    "db": "newsletter.cli.db:db",
    "editors": "newsletter.cli.editors:editors",
}


class LazyGroup(NewsletterGroup):
    """The group whose commands are imported on first use (``COMMANDS``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, _, name = where.partition(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command


LONG_RUNNING = frozenset({"run", "serve"})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    # the long-running commands' lines say when (a log file or a container's has no time of
    # its own); a one-off command's are read as it runs
    when = "%(asctime)s " if ctx.invoked_subcommand in LONG_RUNNING else ""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=when + "%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = State(config_path, debug=debug)
    if ctx.invoked_subcommand not in STOPPABLE:
        STOP.release()


def main() -> None:
    cli(prog_name="newsletter")
