"""The admins' pages of the desk: ``/desk/editors`` (add, disable, enable, remove with a
confirmation step, a new one-time link) and ``/desk/audit`` (the audit log, newest first).
An editor who is not an admin gets 403 on each."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.errors import EditorError
from newsletter.models import EditorRole
from newsletter.records import Editor
from newsletter.web.desk import accounts
from newsletter.web.desk.frame import Desk
from newsletter.web.forms import BadRequest, one
from newsletter.web.pages import not_found

ADMIN = EditorRole.ADMIN
EDITORS = "/desk/editors"
AUDIT_PAGE = 100  # lines of the audit log to a page


class Editors:
    """``/desk/editors``: the accounts, and what an admin can do to them."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        desk.add(EDITORS, self.page, role=ADMIN)
        desk.add(EDITORS, self.add_post, methods=("POST",), role=ADMIN)
        for action in ("disable", "enable", "link", "remove"):
            desk.add_form(f"{EDITORS}/{{id:int}}/{action}", self._change, back=EDITORS, role=ADMIN)
        desk.add(f"{EDITORS}/{{id:int}}/remove", self.remove_page, role=ADMIN)

    def _page(self, request: Request, status: int = 200, **values: object) -> Response:
        values = {"error": "", "notice": "", "link_url": "", "email": "", "name": "", **values}
        return self.desk.render(
            request,
            "editors.html.j2",
            "Editors",
            status,
            editors=self.desk.store.editors.editor_list(),
            roles=[r.value for r in EditorRole],
            mails_links=accounts.mails_links(self.desk.config),
            **values,
        )

    def page(self, request: Request) -> Response:
        return self._page(request)

    async def add_post(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            email = one(fields, "email", 254)
            name = one(fields, "name", accounts.MAX_NAME)
            role = one(fields, "role", 16)
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=EDITORS)
        return await run_in_threadpool(self._add, request, email, name, role)

    def _add(self, request: Request, email: str, name: str, role: str) -> Response:
        desk, admin = self.desk, self.desk.editor(request)
        if role not in EditorRole._value2member_map_:
            return self._page(request, 400, error=f"No such role: {role}.", email=email, name=name)
        try:
            editor = accounts.add_editor(
                desk.store, email, name=name, role=EditorRole(role), actor=admin, now=desk.now()
            )
        except EditorError as exc:
            return self._page(request, 400, error=_said(exc), email=email, name=name)
        return self._with_link(request, editor, f"{editor.email} is an {editor.role} now.")

    def _with_link(self, request: Request, editor: Editor, said: str) -> Response:
        """The editors' page after a new link: queued as an email, or shown once to pass on
        (while delivery is the outbox folder, which nobody reads)."""
        desk, admin = self.desk, self.desk.editor(request)
        hours = f"{desk.config.file.desk.link_hours:g}"
        if accounts.mails_links(desk.config):
            accounts.send_link(desk.config, desk.store, editor, actor=admin, now=desk.now())
            desk.wake()
            notice = f"{said} A one-time link to set a password is on its way to them."
            return self._page(request, notice=notice)
        url = accounts.issue_link(desk.config, desk.store, editor, actor=admin, now=desk.now())
        notice = f"{said} Give them this one-time link to set a password (it works once, for "
        return self._page(request, notice=notice + f"{hours} hours):", link_url=url)

    def _target(self, request: Request) -> Editor | None:
        return self.desk.store.editors.editor_by_id(request.path_params["id"])

    def remove_page(self, request: Request) -> Response:
        editor = self._target(request)
        if editor is None:
            return not_found()
        return self.desk.render(request, "remove-editor.html.j2", "Remove an editor", target=editor)

    def _change(self, request: Request) -> Response:
        desk, admin, target = self.desk, self.desk.editor(request), self._target(request)
        if target is None:
            return not_found()
        action = request.url.path.rpartition("/")[2]
        if action == "link":
            return self._with_link(request, target, f"Older links of {target.email} stop working.")
        if target.id == admin.id and action in ("disable", "remove"):
            error = f"You cannot {action} your own account; another admin can."
            return self._page(request, 400, error=error)
        try:
            if action == "remove":
                accounts.remove_editor(desk.store, target, actor=admin, now=desk.now())
            else:
                disable = action == "disable"
                accounts.set_disabled(desk.store, target, disable, actor=admin, now=desk.now())
        except EditorError as exc:
            return self._page(request, 409, error=_said(exc))
        return RedirectResponse(EDITORS, status_code=303)


class Audit:
    """``/desk/audit``: who did what on the desk, newest first, a page at a time."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        desk.add("/desk/audit", self.page, role=ADMIN)

    def page(self, request: Request) -> Response:
        before = request.query_params.get("before", "")
        start = int(before) if before.isdigit() and len(before) < 12 else None
        lines = self.desk.store.editors.audit_log(limit=AUDIT_PAGE + 1, before=start)
        older = lines[AUDIT_PAGE - 1].id if len(lines) > AUDIT_PAGE else None
        return self.desk.render(
            request, "audit.html.j2", "Audit log", lines=lines[:AUDIT_PAGE], older=older
        )


def _said(exc: EditorError) -> str:
    """An error as a sentence for a page."""
    first = exc.message.split(" ", 1)[0]
    text = (exc.message if "@" in first else exc.message[:1].upper() + exc.message[1:]) + "."
    shell = exc.hint and "newsletter " in exc.hint  # a command to run: not for a web page
    return f"{text} {exc.hint}" if exc.hint and not shell else text
