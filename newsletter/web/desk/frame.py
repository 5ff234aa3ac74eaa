"""``Desk``: what every page of the desk goes through (the session, the role, CSRF, the audit
log, the page frame). See the package's docstring for how a page uses it."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter.config import Config
from newsletter.models import AuditAction, EditorRole
from newsletter.records import AuditTarget, Editor
from newsletter.store import Store
from newsletter.web.desk.sessions import COOKIE, Session, Signer
from newsletter.web.forms import CSRF_COOKIE, BadRequest, form_of
from newsletter.web.pages import Pages, new_csrf

logger = logging.getLogger(__name__)

Handler: TypeAlias = Callable[[Request], Response] | Callable[[Request], Awaitable[Response]]

SIGN_IN = "/desk/sign-in"
ROLE = "desk_role"  # the attribute of a desk route's endpoint that names the role it needs
# the desk's menu: (label, path, who sees it); an entry shows once a page answers GET at its path
MENU = (
    ("Today", "/desk/today", EditorRole.EDITOR),
    ("Sent editions", "/desk/editions", EditorRole.EDITOR),
    ("Feeds", "/desk/feeds", EditorRole.EDITOR),
    ("Readers", "/desk/readers", EditorRole.EDITOR),
    ("Editors", "/desk/editors", EditorRole.ADMIN),
    ("Audit", "/desk/audit", EditorRole.ADMIN),
)
_CSRF_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def allowed(editor: Editor, role: EditorRole) -> bool:
    """Whether the editor may open a page meant for ``role``."""
    return role == EditorRole.EDITOR or editor.role == EditorRole.ADMIN


def _page_of(request: Request) -> str:
    """The desk page a posted form came from (its Referer, on this site), else the desk's."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc:
        return "/desk"
    return local_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def local_next(value: str) -> str:
    """Where to go after signing in: a path of the desk, never another site."""
    if value.startswith("/desk") and not value.startswith("/desk/sign-") and "\\" not in value:
        return value
    return "/desk"


class Desk:
    """The desk's routes and what they share; built once per app by ``make_desk``."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        now: Callable[[], datetime],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.config, self.store, self.now = config, store, now
        self.wake = wake  # the worker that sends queued mail: call it after queueing some
        self.pages = Pages(config)
        self.signer = Signer(
            config.secret_key, lifetime=timedelta(hours=config.file.desk.session_hours)
        )
        self.secure = config.publication.base_url.startswith("https://")
        self.routes: list[Route] = []
        self.open_paths: set[str] = set()  # pages that answer without a session (sign-in, ...)

    # --- routes ------------------------------------------------------------------------------

    def add(
        self,
        path: str,
        handler: Handler,
        *,
        methods: tuple[str, ...] = ("GET",),
        role: EditorRole = EditorRole.EDITOR,
    ) -> None:
        """A page at ``path`` for signed-in editors of ``role`` (or admins)."""
        if not path.startswith("/desk"):
            raise ValueError(f"a desk page lives under /desk, not {path}")
        guarded = self._guarded(handler, role)
        guarded.__dict__[ROLE] = role  # for the tests that walk the router
        self.routes.append(Route(path, guarded, methods=list(methods)))

    def add_form(
        self,
        path: str,
        handler: Callable[[Request], Response],
        *,
        back: str,
        role: EditorRole = EditorRole.EDITOR,
    ) -> None:
        """A form's POST at ``path`` for signed-in editors of ``role``: its CSRF token checked
        (refused: a page with the way ``back``), then ``handler`` in the thread pool."""

        async def posted(request: Request) -> Response:
            try:
                await self.form(request)
            except BadRequest as exc:
                return self.refused(request, exc, back=back)
            return await run_in_threadpool(handler, request)

        self.add(path, functools.update_wrapper(posted, handler), methods=("POST",), role=role)

    def route(
        self,
        path: str,
        *,
        methods: tuple[str, ...] = ("GET",),
        role: EditorRole = EditorRole.EDITOR,
    ) -> Callable[[Handler], Handler]:
        """``add`` as a decorator."""

        def register(handler: Handler) -> Handler:
            self.add(path, handler, methods=methods, role=role)
            return handler

        return register

    def add_open(self, path: str, handler: Handler, *, methods: tuple[str, ...] = ("GET",)) -> None:
        """A page that needs no session (signing in, the one-time link): few and reviewed."""
        self.open_paths.add(path)
        self.routes.append(Route(path, handler, methods=list(methods)))

    def _guarded(self, handler: Handler, role: EditorRole) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def guarded_async(request: Request) -> Response:
                refused = await run_in_threadpool(self._admit, request, role)
                if refused is not None:
                    return refused
                answer: Response = await handler(request)
                return answer

            return guarded_async

        @functools.wraps(handler)
        def guarded(request: Request) -> Response:  # run in the thread pool by Starlette
            refused = self._admit(request, role)
            if refused is not None:
                return refused
            answer = handler(request)
            assert isinstance(answer, Response)
            return answer

        return guarded

    def _admit(self, request: Request, role: EditorRole) -> Response | None:
        """None when the request's editor may go on (and is kept on it), else the answer:
        to sign in (no session, or one that ended), or 403 (the wrong role)."""
        editor = self.session_editor(request)
        if editor is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":  # a form: back to the page it was on, once signed in
                wanted = _page_of(request)
            target = f"{SIGN_IN}?next={quote(wanted, safe='/')}"
            ended = COOKIE in request.cookies  # a session that ended: the page says so
            if ended:
                target += "&ended=" + ("form" if request.method != "GET" else "1")
            response = RedirectResponse(target, status_code=303)
            if ended:
                response.delete_cookie(COOKIE, path="/desk")
            return response
        request.state.editor = editor
        if not allowed(editor, role):
            return self.message(
                request, "Not for your role", "This page is for the desk's admins.", status=403
            )
        return None

    def session_editor(self, request: Request) -> Editor | None:
        """The editor whose live session the request carries (a query: thread pool)."""
        session = self.signer.read(request.cookies.get(COOKIE, ""), now=self.now())
        if session is None:
            return None
        editor = self.store.editors.editor_by_id(session.editor_id)
        if editor is None or editor.disabled or editor.session_version != session.version:
            return None
        return editor

    def start_session(self, response: Response, editor: Editor) -> None:
        """Sign the editor in on ``response`` (the cookie lives as long as the session)."""
        now = self.now().replace(microsecond=0)
        cookie = self.signer.sign(Session(editor.id, editor.session_version, now))
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self.signer.lifetime.total_seconds()),
            path="/desk",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    # --- what a page uses --------------------------------------------------------------------

    @staticmethod
    def editor(request: Request) -> Editor:
        """The signed-in editor of a request that came through a desk route."""
        editor = request.state.editor
        assert isinstance(editor, Editor)
        return editor

    def audit(
        self, editor: Editor | None, action: AuditAction, target: AuditTarget, detail: str = ""
    ) -> None:
        """Record what an editor did, to what (a query: call it from the thread pool)."""
        self.store.editors.record_audit(editor, action, target, detail, now=self.now())

    async def form(self, request: Request) -> dict[str, list[str]]:
        """A posted form, its CSRF token checked (``BadRequest``: answer ``self.refused``)."""
        return await form_of(request)

    @staticmethod
    def csrf(request: Request) -> str:
        """The token every form of the page carries (the one in the browser's cookie when it
        has one, so that several tabs of the desk all work)."""
        held = request.cookies.get(CSRF_COOKIE, "")
        return held if _CSRF_SHAPE.match(held) else new_csrf()

    def render(
        self, request: Request, template: str, title: str, status: int = 200, **values: object
    ) -> HTMLResponse:
        """A desk page from ``templates/web/desk/TEMPLATE`` in the desk's frame; its context
        has ``editor``, ``menu``, ``csrf`` (for each form) and ``values``."""
        editor: Editor | None = getattr(request.state, "editor", None)
        menu = [
            (label, path, path == request.url.path)
            for label, path, role in MENU
            if editor is not None and allowed(editor, role) and self._answers(path)
        ]
        return self.pages.page(
            f"desk/{template}",
            title,
            status,
            csrf=self.csrf(request),
            editor=editor,
            menu=menu,
            **values,
        )

    def message(
        self,
        request: Request,
        title: str,
        *paragraphs: str,
        status: int = 200,
        links: list[tuple[str, str]] | None = None,
    ) -> HTMLResponse:
        """A page that says what happened, with the next steps."""
        links = links if links is not None else [("Back to the desk", "/desk")]
        return self.render(
            request, "message.html.j2", title, status, paragraphs=paragraphs, links=links
        )

    async def wrong_method(self, request: Request, exc: Exception) -> Response:
        """A desk address opened with a method it does not take (a form's, opened): a page in
        the desk's frame with the way back; elsewhere Starlette's plain 405."""
        path = request.url.path
        if not path.startswith("/desk"):
            headers = getattr(exc, "headers", None)
            return PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)
        editor = await run_in_threadpool(self.session_editor, request)
        if editor is not None:  # the desk's menu, for a signed-in editor
            request.state.editor = editor
        parent = path.rsplit("/", 1)[0]
        while parent.startswith("/desk/") and not self._answers(parent):
            parent = parent.rsplit("/", 1)[0]
        back = parent if parent.startswith("/desk/") else "/desk"
        said = (
            "This address takes a form of the desk: it is where a form is sent, not a page to "
            "open. Go back to the page the form is on."
        )
        links = [("Go back", back)] + ([("The desk", "/desk")] if back != "/desk" else [])
        return self.message(request, "Not a page", said, status=405, links=links)

    def refused(self, request: Request, exc: BadRequest, *, back: str) -> HTMLResponse:
        """A form that could not be taken (an expired CSRF token, ...)."""
        links = [("Open the form again", back)]
        return self.message(
            request, "That did not work", exc.message, status=exc.status, links=links
        )

    def _answers(self, path: str) -> bool:
        return any(r.path == path and "GET" in (r.methods or ()) for r in self.routes)
