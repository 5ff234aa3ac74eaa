"""What can be done to an editor's account, from the shell (``newsletter editors``) or the
desk's admin pages, each change recorded in the audit log with who made it: add, set a
password, send a one-time link, disable, enable, remove.

The last admin who can sign in can be neither disabled nor removed, so the desk always has
someone who can manage it.
"""

from __future__ import annotations

import getpass
from datetime import datetime, timedelta

from newsletter.config import Config
from newsletter.delivery.outgoing import editor_link_path
from newsletter.errors import EditorError, SubscriberError
from newsletter.models import AuditAction, EditorRole
from newsletter.readers.links import absolute
from newsletter.readers.subscriptions import normalise_email
from newsletter.records import AuditTarget, Editor
from newsletter.store import Store
from newsletter.text import plain_name
from newsletter.web.desk.passwords import check_new_password, hash_password

MAX_NAME = 200


def shell_actor() -> str:
    """How the audit log names a change made from the shell."""
    try:
        return f"shell ({getpass.getuser()})"
    except (OSError, KeyError):
        return "shell"


def checked_email(address: str) -> str:
    try:
        return normalise_email(address)
    except SubscriberError as exc:
        raise EditorError(exc.message, hint=exc.hint) from None


def find_editor(store: Store, address: str) -> Editor:
    """The account of an address, or ``EditorError``."""
    editor = store.editors.editor_by_email(checked_email(address))
    if editor is None:
        raise EditorError(
            f"no editor has the address {address}", hint="newsletter editors list shows them."
        )
    return editor


def _audit(
    store: Store,
    actor: Editor | None,
    action: AuditAction,
    target: Editor,
    detail: str = "",
    *,
    now: datetime,
) -> None:
    who = "" if actor else shell_actor()
    target_of = AuditTarget("editor", target.email)
    store.editors.record_audit(actor, action, target_of, detail, now=now, email=who)


def add_editor(
    store: Store, address: str, *, name: str, role: EditorRole, actor: Editor | None, now: datetime
) -> Editor:
    """A new account, without a password yet (set one, or send a link)."""
    email = checked_email(address)
    cleaned = plain_name(name)
    if len(cleaned) > MAX_NAME:
        raise EditorError(f"a name has at most {MAX_NAME} characters")
    editor = store.editors.add_editor(email, name=cleaned, role=role, now=now)
    if editor is None:
        raise EditorError(
            f"{email} is an editor already",
            hint="newsletter editors enable EMAIL brings back a disabled one.",
        )
    _audit(store, actor, AuditAction.EDITOR_ADDED, editor, f"role {role}", now=now)
    return editor


def set_password(
    store: Store, editor: Editor, password: str, again: str, *, actor: Editor | None, now: datetime
) -> None:
    """A new password; every session of the editor ends (``EditorError``: too short, ...)."""
    check_new_password(password, again)
    store.editors.set_password_hash(editor.id, hash_password(password), now=now)
    _audit(store, actor, AuditAction.PASSWORD_SET, editor, now=now)


def issue_link(
    config: Config, store: Store, editor: Editor, *, actor: Editor | None, now: datetime
) -> str:
    """A new one-time set-password link for the editor (their older ones stop working);
    returns its full address. ``send_link`` queues it as an email. ``EditorError`` for a
    disabled editor, whom no link would let sign in."""
    if editor.disabled:
        raise EditorError(
            f"{editor.email} is disabled: a link would not let them sign in",
            hint=f"Enable them first: newsletter editors enable {editor.email}",
        )
    hours = config.file.desk.link_hours
    link = store.editors.issue_link(editor.id, now=now, expires_at=now + timedelta(hours=hours))
    token = store.editors.link_token(link.id)
    assert token is not None  # made just now
    _audit(store, actor, AuditAction.LINK_ISSUED, editor, f"valid {hours:g} hours", now=now)
    return absolute(config.publication.base_url, editor_link_path(token))


def mails_links(config: Config) -> bool:
    """Whether links go by email: not while delivery is the outbox folder, which nobody
    reads (the link is shown to whoever made it instead)."""
    return config.file.delivery.backend != "outbox"


def send_link(
    config: Config, store: Store, editor: Editor, *, actor: Editor | None, now: datetime
) -> str:
    """A new link queued as an email (sent by the web app's worker); returns its address."""
    url = issue_link(config, store, editor, actor=actor, now=now)
    link = store.editors.link_by_token(url.rpartition("/")[2])
    assert link is not None
    store.outgoing.queue_editor_link(link.id, now=now)
    return url


def set_disabled(
    store: Store, editor: Editor, disabled: bool, *, actor: Editor | None, now: datetime
) -> None:
    """Disable (every session ends at once; no sign-in) or enable an account."""
    if disabled:
        _keep_an_admin(store, editor, "disable")
    store.editors.set_disabled(editor.id, disabled, now=now)
    action = AuditAction.EDITOR_DISABLED if disabled else AuditAction.EDITOR_ENABLED
    _audit(store, actor, action, editor, now=now)


def remove_editor(store: Store, editor: Editor, *, actor: Editor | None, now: datetime) -> None:
    """Delete an account (its sessions end; its lines in the audit log stay)."""
    _keep_an_admin(store, editor, "remove")
    store.editors.remove_editor(editor.id)
    _audit(store, actor, AuditAction.EDITOR_REMOVED, editor, now=now)


def _keep_an_admin(store: Store, editor: Editor, verb: str) -> None:
    if editor.is_admin and not editor.disabled and store.editors.active_admins() <= 1:
        raise EditorError(
            f"{editor.email} is the last admin who can sign in; cannot {verb} them",
            hint="Make another admin first: newsletter editors add EMAIL --role admin.",
        )
