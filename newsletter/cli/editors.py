"""``newsletter editors``: the accounts of the editor's desk (``/desk`` on ``serve``): add,
list, disable, enable, remove, and a new one-time link."""

from __future__ import annotations

import click
from rich.markup import escape

from newsletter.cli.common import State, current_time, make_table, pass_state, plural
from newsletter.models import EditorRole
from newsletter.records import Editor
from newsletter.store import Store
from newsletter.web.desk import accounts
from newsletter.web.desk.passwords import check_new_password


@click.group()
def editors() -> None:
    """Manage the editor's desk's accounts: add, list, disable, enable, remove.

    Example: newsletter editors add ada@example.com --name "Ada Lovelace" --role admin
    """


def _link(state: State, store: Store, editor: Editor) -> None:
    """A one-time set-password link: mailed by `newsletter serve`'s worker, or printed while
    delivery is the outbox folder (which nobody reads)."""
    config, now = state.config, current_time()
    hours = f"{config.file.desk.link_hours:g}"
    if accounts.mails_links(config):
        accounts.send_link(config, store, editor, actor=None, now=now)
        state.console.print(
            f"A one-time link to set a password is queued for {escape(editor.email)}; "
            f"newsletter serve sends it. It works once, for {hours} hours."
        )
        return
    url = accounts.issue_link(config, store, editor, actor=None, now=now)
    state.console.print(
        f"Give {escape(editor.email)} this one-time link to set a password (it works once, "
        f"for {hours} hours; no email is sent while delivery.backend is outbox):"
    )
    click.echo(url)


@editors.command("add")
@click.argument("email")
@click.option("--name", default="", help="The editor's name.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in EditorRole]),
    default=EditorRole.EDITOR.value,
    show_default=True,
    help="An admin also manages the editors and sees the audit log.",
)
@click.option(
    "--link",
    is_flag=True,
    help="Send a one-time link to set the password (printed when delivery is the outbox) "
    "instead of typing it here.",
)
@pass_state
def editors_add(state: State, email: str, name: str, role: str, link: bool) -> None:
    """Add an editor; type their password twice (hidden), or send them a one-time link.

    Example: newsletter editors add ed@example.com --name "Ed Baker" --link
    """
    password = ""
    if not link:  # asked before anything is stored: Ctrl-C here leaves nothing behind
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        check_new_password(password, password)
    store = state.store()
    try:
        now = current_time()
        editor = accounts.add_editor(
            store, email, name=name, role=EditorRole(role), actor=None, now=now
        )
        state.console.print(f"Added {escape(editor.email)} ({editor.role})")
        if link:
            _link(state, store, editor)
        else:
            accounts.set_password(store, editor, password, password, actor=None, now=now)
            state.console.print("Their password is set; they can sign in at /desk/sign-in.")
    finally:
        store.close()


@editors.command("link")
@click.argument("email")
@pass_state
def editors_link(state: State, email: str) -> None:
    """Send an editor a new one-time link to set their password (their older links stop
    working; their password, if any, works until the new one is set).

    Example: newsletter editors link ed@example.com
    """
    store = state.store()
    try:
        _link(state, store, accounts.find_editor(store, email))
    finally:
        store.close()


@editors.command("list")
@pass_state
def editors_list(state: State) -> None:
    """List the editors: address, name, role, whether they can sign in.

    Example: newsletter editors list
    """
    store = state.store()
    try:
        found = store.editors.editor_list()
    finally:
        store.close()
    table = make_table("email", "name", "role", "state")
    for e in found:
        said = "disabled" if e.disabled else "can sign in" if e.has_password else "no password yet"
        table.add_row(escape(e.email), escape(e.name), e.role, said)
    state.console.print(table)
    state.console.print(plural(len(found), "editor"))


def _change(state: State, email: str, verb: str) -> None:
    store = state.store()
    try:
        editor = accounts.find_editor(store, email)
        now = current_time()
        if verb == "removed":
            accounts.remove_editor(store, editor, actor=None, now=now)
        else:
            accounts.set_disabled(store, editor, verb == "disabled", actor=None, now=now)
    finally:
        store.close()
    state.console.print(f"{escape(editor.email)} {verb}")


@editors.command("disable")
@click.argument("email")
@pass_state
def editors_disable(state: State, email: str) -> None:
    """Stop an editor signing in; their sessions end at once (the last admin stays).

    Example: newsletter editors disable ed@example.com
    """
    _change(state, email, "disabled")


@editors.command("enable")
@click.argument("email")
@pass_state
def editors_enable(state: State, email: str) -> None:
    """Let a disabled editor sign in again.

    Example: newsletter editors enable ed@example.com
    """
    _change(state, email, "enabled")


@editors.command("remove")
@click.argument("email")
@pass_state
def editors_remove(state: State, email: str) -> None:
    """Delete an editor's account (their lines in the audit log stay; the last admin stays).

    Example: newsletter editors remove ed@example.com
    """
    _change(state, email, "removed")
