"""``EditorStore``: the desk's accounts (``editors``), their one-time set-password links
(``editor_links``) and the audit log (``audit``).

A password is kept as its argon2 hash only (made in ``web/desk/passwords.py``); the store never
sees the password itself. A link's token is not kept either: it is derived from the link's row
(its id and a random nonce) with the store's key, so the web worker that mails it and the page
that takes it agree, and a copy of the database alone cannot make one.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.models import AuditAction, EditorRole
from newsletter.records import AuditEntry, AuditTarget, Editor, EditorLink
from newsletter.store.base import Repository
from newsletter.store.tables import audit, editor_links, editors


def _editor(row: Any) -> Editor:
    return Editor(
        id=row.id,
        email=row.email,
        name=row.name,
        role=EditorRole(row.role),
        disabled=bool(row.disabled),
        session_version=row.session_version,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _link(row: Any) -> EditorLink:
    return EditorLink(row.id, row.editor_id, row.created_at, row.expires_at, row.used_at)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        editor_id=row.editor_id,
        editor_email=row.editor_email,
        action=AuditAction(row.action),
        target=AuditTarget(row.target_kind, row.target_id),
        detail=row.detail,
    )


class EditorStore(Repository):
    """The desk's accounts, links and audit log."""

    def add_editor(
        self, email: str, *, name: str, role: EditorRole, now: datetime
    ) -> Editor | None:
        """A new account without a password (None: the address has one already)."""
        values = {
            "email": email,
            "name": name,
            "role": role,
            "disabled": False,
            "session_version": 1,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(
                    insert(editors).values(values).returning(editors.c.id)
                ).scalar_one()
        except IntegrityError:
            return None
        return self.editor_by_id(int(new_id))

    def editor_by_id(self, editor_id: int) -> Editor | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(editors).where(editors.c.id == editor_id)).first()
        return None if row is None else _editor(row)

    def editor_by_email(self, email: str) -> Editor | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(editors).where(editors.c.email == email)).first()
        return None if row is None else _editor(row)

    def editor_list(self) -> list[Editor]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(editors).order_by(editors.c.email)).all()
        return [_editor(r) for r in rows]

    def active_admins(self) -> int:
        """How many admins can sign in (not disabled)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(editors)
                .where(editors.c.role == EditorRole.ADMIN, editors.c.disabled.is_(False))
            ).scalar_one()
        return int(found)

    def password_hash(self, editor_id: int) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(editors.c.password_hash).where(editors.c.id == editor_id)
            ).scalar_one_or_none()
        return found if isinstance(found, str) else None

    def set_password_hash(
        self, editor_id: int, password_hash: str, *, now: datetime, new_session: bool = True
    ) -> None:
        """Keep a new hash; ``new_session`` (a new password) ends the editor's sessions, which
        a rehash of the same password with newer parameters must not."""
        values: dict[str, Any] = {"password_hash": password_hash, "updated_at": now}
        if new_session:
            values["session_version"] = editors.c.session_version + 1
        with self.engine.begin() as conn:
            conn.execute(update(editors).where(editors.c.id == editor_id).values(values))

    def set_disabled(self, editor_id: int, disabled: bool, *, now: datetime) -> None:
        """Disable (every session ends at once) or enable an account."""
        with self.engine.begin() as conn:
            conn.execute(
                update(editors)
                .where(editors.c.id == editor_id)
                .values(
                    disabled=disabled,
                    session_version=editors.c.session_version + 1,
                    updated_at=now,
                )
            )

    def end_sessions(self, editor_id: int, *, now: datetime) -> None:
        """Every session of the editor ends (signing out)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(editors)
                .where(editors.c.id == editor_id)
                .values(session_version=editors.c.session_version + 1, updated_at=now)
            )

    def remove_editor(self, editor_id: int) -> bool:
        """Delete an account, its links and their queued emails; its audit lines stay."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(editors).where(editors.c.id == editor_id)).rowcount)

    # --- one-time links ----------------------------------------------------------------------

    def issue_link(self, editor_id: int, *, now: datetime, expires_at: datetime) -> EditorLink:
        """A new link for the editor; their earlier unused links stop working."""
        with self.engine.begin() as conn:
            conn.execute(
                update(editor_links)
                .where(editor_links.c.editor_id == editor_id, editor_links.c.used_at.is_(None))
                .values(used_at=now)
            )
            new_id = conn.execute(
                insert(editor_links)
                .values(
                    editor_id=editor_id,
                    nonce=secrets.token_hex(16),
                    created_at=now,
                    expires_at=expires_at,
                )
                .returning(editor_links.c.id)
            ).scalar_one()
            row = conn.execute(select(editor_links).where(editor_links.c.id == new_id)).one()
        return _link(row)

    def link_token(self, link_id: int) -> str | None:
        """The token of a link, for its URL (None: no such link)."""
        with self.engine.connect() as conn:
            nonce = conn.execute(
                select(editor_links.c.nonce).where(editor_links.c.id == link_id)
            ).scalar_one_or_none()
        return None if nonce is None else f"{link_id}.{self._mac(link_id, str(nonce))}"

    def link_by_id(self, link_id: int) -> EditorLink | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(editor_links).where(editor_links.c.id == link_id)).first()
        return None if row is None else _link(row)

    def link_by_token(self, token: str) -> EditorLink | None:
        """The link a token names, whatever its state (None: no link has that token)."""
        number, _, mac = token.partition(".")
        if not number.isdigit() or len(number) > 12 or not mac:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(editor_links).where(editor_links.c.id == int(number))).first()
        if row is None or not hmac.compare_digest(mac, self._mac(row.id, row.nonce)):
            return None
        return _link(row)

    def use_link(self, link_id: int, *, now: datetime) -> bool:
        """Spend a link; False when it was spent (or replaced) already: it works once."""
        with self.engine.begin() as conn:
            spent = conn.execute(
                update(editor_links)
                .where(editor_links.c.id == link_id, editor_links.c.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
        return bool(spent)

    def _mac(self, link_id: int, nonce: str) -> str:
        digest = hmac.digest(self.privacy_key, f"editor-link:{link_id}:{nonce}".encode(), "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # --- the audit log -----------------------------------------------------------------------

    def record_audit(
        self,
        editor: Editor | None,
        action: AuditAction,
        target: AuditTarget,
        detail: str = "",
        *,
        now: datetime,
        email: str = "",
    ) -> None:
        """One line of the audit log; ``email`` names the address a refused sign-in tried."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit).values(
                    at=now,
                    editor_id=editor.id if editor else None,
                    editor_email=(editor.email if editor else email)[:254],
                    action=action,
                    target_kind=target.kind[:32],
                    target_id=target.id[:200],
                    detail=detail[:2000],
                )
            )

    def audit_log(self, *, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
        """The newest lines first; ``before`` (a line's id) pages back."""
        query = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(audit.c.id < before)
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]
