"""``newsletter serve`` (the public pages and the readers' app), ``newsletter embed`` (a
sign-up form for another site) and ``newsletter run`` (the scheduler)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import click
from rich.markup import escape

from newsletter.cli.common import (
    PORT,
    State,
    check_preflight,
    current_time,
    listening,
    pass_state,
    print_prose,
)
from newsletter.cli.stopping import STOP
from newsletter.delivery import preflight
from newsletter.delivery.mailers import make_mailer


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=PORT, help="Port to listen on.")
@pass_state
def serve(state: State, host: str, port: int) -> None:
    """Run the publication's web app: the readers' pages (sign-up, confirm, preferences,
    unsubscribe), the public archive with its sector pages and feeds, the editors' desk
    (/desk, signed-in editors only) and SendGrid's event webhook.

    Put it behind your HTTPS proxy and set publication.base_url to its public address.

    Example: newsletter serve --port 8000
    """
    import uvicorn

    from newsletter.web.accesslog import mask_tokens_in_access_log
    from newsletter.web.app import create_app

    config = state.config
    sock = listening(host, port)
    store = state.store()
    mailer = make_mailer(config)
    try:
        # X-Forwarded-For is believed only from signup.trusted_proxies, by the app itself
        app = create_app(config, store, mailer, now=current_time)  # (its keys checked first)
        _say_where_links_point(state, host, sock.getsockname()[1])
        state.console.print(f"Serving {config.publication.name} on http://{host}:{port}/subscribe")
        server = uvicorn.Config(app, proxy_headers=False)  # (sets up uvicorn's logging)
        mask_tokens_in_access_log()
        uvicorn.Server(server).run(sockets=[sock])
    finally:
        sock.close()
        mailer.close()
        store.close()


def _say_where_links_point(state: State, host: str, port: int) -> None:
    """A base_url on this machine but another port than the one served: the pages' logo and
    links, and the emails', point where nothing answers; said before serving."""
    base = urlsplit(state.config.publication.base_url)
    local = base.hostname in ("localhost", "127.0.0.1", "::1", host)
    if local and (base.port or (443 if base.scheme == "https" else 80)) != port:
        here = f"http://{host}:{port}"
        print_prose(
            state.console,
            f"[yellow]Note:[/] publication.base_url is {escape(base.geturl())}, so the logo and "
            f"the links of these pages and of the emails point there, not here. To try it on "
            f"this machine, set it to {here}; in production, to the public address.",
        )


@click.command()
@pass_state
def embed(state: State) -> None:
    """Print an HTML sign-up form to paste into your own site.

    It posts to publication.base_url's /embed/subscribe with the same double opt-in as the
    sign-up page: nothing is sent to the address until its owner confirms.

    Example: newsletter embed > signup-form.html
    """
    from newsletter.edition import render
    from newsletter.readers.subscriptions import consent_wording

    config = state.config
    publication = config.publication
    env = render.make_environment(config.templates_dir)
    snippet = render.render_page(
        env,
        "web/embed.html.j2",
        {
            "publication": publication.name,
            "base_url": publication.base_url.rstrip("/"),
            "sectors": config.sectors,
            "consent": consent_wording(publication.name),
            "privacy_url": publication.privacy_url,
            "terms_url": publication.terms_url,
        },
    )
    click.echo(snippet, nl=False)


@click.command("run")
@click.option(
    "--only",
    type=click.Choice(["collect", "send"]),
    help="Play one role: collect the feeds, or send the editions, daily and weekly (default: "
    "both).",
)
@click.option(
    "--standby",
    is_flag=True,
    help="If another scheduler runs the job, wait and take over once it has been silent for "
    "schedule.lease_seconds, instead of exiting.",
)
@pass_state
def run_scheduler(state: State, only: str | None, standby: bool) -> None:
    """Run the scheduler in the foreground: collect every N minutes, and send each edition to
    each reader at their own delivery hour (send_at in the schedule's zone by default).

    Logs one line per job run. SIGTERM or Ctrl-C finishes the requests in flight and exits.
    Only one scheduler runs each job for a database (a lease held through the database), so
    machines can split the roles (--only) and keep a standby (--standby).

    Example: newsletter --config /etc/newsletter/config.yaml run --only send --standby
    """

    from newsletter.schedule import runner as scheduler

    logging.getLogger("newsletter.run").setLevel(logging.INFO)
    config = state.config
    roles = (only,) if only else scheduler.ROLES
    if "send" in roles and preflight.needed(config, dry_run=False):
        check_preflight(config)
    schedule = config.file.schedule
    days = ", ".join(schedule.weekdays) or "every day"
    plays = {
        "collect": f"collect every {schedule.collect_every_minutes:g} minutes",
        "send": f"send at each reader's hour (by default {schedule.send_at} "
        f"{schedule.timezone}), {days}",
    }
    state.console.print(
        f"Scheduler for {config.publication.name}: " + "; ".join(plays[r] for r in roles)
    )
    with STOP.caught() as stop:  # SIGTERM or Ctrl-C: the jobs under way finish, then it stops
        runner = scheduler.Runner(
            config,
            open_store=state.store,
            make_mailer=lambda: make_mailer(config),
            clock=lambda: datetime.now(UTC),  # the wall clock: NEWSLETTER_NOW would stop it
            roles=roles,
            stop=stop,
        )
        say = lambda line: state.console.print(escape(line))  # noqa: E731
        scheduler.run(runner, say=say, standby=standby)
