"""Signing in and out of the desk, and the one-time set-password link.

Sign-in takes an address and a password (CSRF-checked like every desk form). A wrong one
counts against the account and the client's address (``desk.sign_in_per_account``,
``desk.sign_in_per_ip``, 10 a minute each); past either limit every attempt is refused with
429 and the time to try again, whatever the password. A wrong address takes as long as a wrong
password, and both get the same answer. Every attempt is in the audit log.
"""

from __future__ import annotations

from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.errors import EditorError
from newsletter.models import AuditAction
from newsletter.records import AuditTarget, Editor, EditorLink
from newsletter.web.desk import accounts
from newsletter.web.desk.frame import SIGN_IN, Desk, local_next
from newsletter.web.desk.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from newsletter.web.desk.sessions import COOKIE
from newsletter.web.forms import BadRequest, client_ip, one
from newsletter.web.pages import not_found
from newsletter.web.ratelimit import RateLimit

DESK = AuditTarget("desk", "")


# a session that ended (its hours, a sign-out elsewhere, a new password), as the page says it
_ENDED = {
    "1": "Your session ended. Sign in again to go on.",
    "form": "Your session ended, so what you last sent was not saved. Sign in again, then make "
    "the change again.",
}


class SignIn:
    """``/desk/sign-in``, ``/desk/sign-out`` and ``/desk/set-password/{token}``."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        settings = desk.config.file.desk
        store, now = desk.store, desk.now
        self.per_account = RateLimit(
            settings.sign_in_per_account,
            "database",
            store=store,
            now=now,
            setting="desk.sign_in_per_account",
        )
        self.per_ip = RateLimit(
            settings.sign_in_per_ip, "database", store=store, now=now, setting="desk.sign_in_per_ip"
        )
        self.trusted = frozenset(desk.config.file.signup.trusted_proxies)
        desk.add_open(SIGN_IN, self.page)
        desk.add_open(SIGN_IN, self.sign_in, methods=("POST",))
        desk.add_open("/desk/set-password/{token}", self.link_page)
        desk.add_open("/desk/set-password/{token}", self.set_password, methods=("POST",))
        desk.add("/desk/sign-out", self.sign_out, methods=("POST",))

    def _form(self, request: Request, status: int = 200, **values: object) -> Response:
        values = {"email": "", "error": "", "notice": "", **values}
        nxt = local_next(str(values.pop("next", request.query_params.get("next", ""))))
        return self.desk.render(request, "sign-in.html.j2", "Sign in", status, next=nxt, **values)

    def page(self, request: Request) -> Response:
        if self.desk.session_editor(request) is not None:
            return RedirectResponse(local_next(request.query_params.get("next", "")), 303)
        notice = "Your password is set. Sign in with it." if "set" in request.query_params else ""
        notice = _ENDED.get(request.query_params.get("ended", ""), notice)
        return self._form(request, notice=notice)

    async def sign_in(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            email = one(fields, "email", 254).strip().lower()
            password = one(fields, "password", MAX_LENGTH + 1)
            nxt = local_next(one(fields, "next", 2000))
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=SIGN_IN)
        return await run_in_threadpool(self._sign_in, request, email, password, nxt)

    def _sign_in(self, request: Request, email: str, password: str, nxt: str) -> Response:
        desk, address = self.desk, client_ip(request, self.trusted)
        account_key, ip_key = f"desk-account:{email}", f"desk-ip:{address}"
        editor = desk.store.editors.editor_by_email(email) if email else None
        if self.per_account.blocked(account_key) or self.per_ip.blocked(ip_key):
            until = max(self.per_account.retry_at(account_key), self.per_ip.retry_at(ip_key))
            self._refused(editor, email, f"over the limit, from {address}")
            return self._too_many(request, email, until)
        stored = desk.store.editors.password_hash(editor.id) if editor else None
        if not verify_password(stored, password) or editor is None or editor.disabled:
            self.per_account.record(account_key)
            self.per_ip.record(ip_key)
            why = "disabled" if editor and editor.disabled else "wrong address or password"
            self._refused(editor, email, f"{why}, from {address}")
            error = "That address and password do not match an editor who may sign in."
            return self._form(request, 401, email=email, next=nxt, error=error)
        assert stored is not None
        if needs_rehash(stored):
            hashed = hash_password(password)
            desk.store.editors.set_password_hash(
                editor.id, hashed, now=desk.now(), new_session=False
            )
        desk.audit(editor, AuditAction.SIGN_IN, DESK, f"from {address}")
        response = RedirectResponse(nxt, status_code=303)
        desk.start_session(response, editor)
        return response

    def _refused(self, editor: Editor | None, email: str, detail: str) -> None:
        self.desk.store.editors.record_audit(
            editor, AuditAction.SIGN_IN_REFUSED, DESK, detail, now=self.desk.now(), email=email
        )

    def _too_many(self, request: Request, email: str, until: datetime) -> Response:
        seconds = max(1, int((until - self.desk.now()).total_seconds() + 0.999))
        error = (
            f"Too many wrong passwords. Try again at {until:%H:%M:%S} UTC, "
            f"in {seconds} second{'s' if seconds != 1 else ''}."
        )
        response = self._form(request, 429, email=email, error=error)
        response.headers["Retry-After"] = str(seconds)
        return response

    async def sign_out(self, request: Request) -> Response:
        try:
            await self.desk.form(request)
        except BadRequest as exc:
            return self.desk.refused(request, exc, back="/desk")
        editor = self.desk.editor(request)
        await run_in_threadpool(self._sign_out, editor)
        response = RedirectResponse(SIGN_IN, status_code=303)
        response.delete_cookie(COOKIE, path="/desk")
        return response

    def _sign_out(self, editor: Editor) -> None:
        """Every session of the editor ends (the cookie on another device too)."""
        now = self.desk.now()
        self.desk.store.editors.end_sessions(editor.id, now=now)
        self.desk.audit(editor, AuditAction.SIGN_OUT, DESK)

    # --- the one-time link -------------------------------------------------------------------

    def _link(self, request: Request) -> tuple[EditorLink | None, Editor | None, str]:
        """The link in the URL, its editor, and why it cannot be used ("" when it can)."""
        link = self.desk.store.editors.link_by_token(request.path_params["token"])
        if link is None:
            return None, None, ""
        editor = self.desk.store.editors.editor_by_id(link.editor_id)
        if link.used_at is not None:
            why = "This link was used already (or a newer one replaced it)."
        elif self.desk.now() >= link.expires_at:
            why = "This link has expired."
        elif editor is None or editor.disabled:
            why = "This account cannot sign in."
        else:
            why = ""
        return link, editor, why

    def _gone(self, request: Request, why: str) -> Response:
        return self.desk.message(
            request,
            "This link cannot be used",
            why,
            "Ask an admin of the desk for a new one.",
            status=410,
            links=[("Sign in", SIGN_IN)],
        )

    def link_page(self, request: Request) -> Response:
        link, editor, why = self._link(request)
        if link is None or editor is None:
            return not_found()
        if why:
            return self._gone(request, why)
        return self._password_form(request, editor)

    def _password_form(
        self, request: Request, editor: Editor, status: int = 200, error: str = ""
    ) -> Response:
        return self.desk.render(
            request,
            "set-password.html.j2",
            "Set your password",
            status,
            email=editor.email,
            action=request.url.path,
            min_length=MIN_LENGTH,
            error=error,
        )

    async def set_password(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            password = one(fields, "password", MAX_LENGTH + 1)
            again = one(fields, "again", MAX_LENGTH + 1)
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=request.url.path)
        return await run_in_threadpool(self._set_password, request, password, again)

    def _set_password(self, request: Request, password: str, again: str) -> Response:
        link, editor, why = self._link(request)
        if link is None or editor is None:
            return not_found()
        if why:
            return self._gone(request, why)
        try:
            check_new_password(password, again)
        except EditorError as exc:
            said = f"{exc.message[0].upper()}{exc.message[1:]}. {exc.hint or ''}".strip()
            return self._password_form(request, editor, 400, said)
        if not self.desk.store.editors.use_link(link.id, now=self.desk.now()):
            return self._gone(request, "This link was used already.")
        accounts.set_password(
            self.desk.store, editor, password, again, actor=editor, now=self.desk.now()
        )
        return RedirectResponse(f"{SIGN_IN}?set=1", status_code=303)
