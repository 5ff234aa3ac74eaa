"""The editor's desk: ``/desk`` on ``newsletter serve``, for signed-in editors only.

``make_desk`` builds one ``Desk`` and each section's routes on it; ``web.app.create_app``
mounts them, and answers a GET of a form's address with ``Desk.wrong_method``. Sections are
classes that take the ``Desk`` and register their pages in ``__init__`` (``SECTIONS`` below
lists them; add a new one there).

How a page uses the ``Desk`` (``frame.py``)::

    class Feeds:
        def __init__(self, desk: Desk) -> None:
            self.desk = desk
            desk.add("/desk/feeds", self.page)                       # GET, any editor
            desk.add_form("/desk/feeds/{id}/retry", self.retry, back="/desk/feeds")
            desk.add("/desk/feeds/log", self.log, role=EditorRole.ADMIN)  # admins only: 403

        def page(self, request: Request) -> Response:               # plain def: thread pool
            editor = self.desk.editor(request)                       # the signed-in Editor
            return self.desk.render(request, "feeds.html.j2", "Feeds", feeds=...)

        def retry(self, request: Request) -> Response:              # CSRF checked first
            ...
            self.desk.audit(self.desk.editor(request), AuditAction.X,
                            AuditTarget("feed", url), "retried")     # thread pool: a query
            return RedirectResponse("/desk/feeds", status_code=303)

- Every route added with ``Desk.add`` (or the ``Desk.route`` decorator) goes through the
  session check first: no session, an expired one, a disabled or removed editor, or a cookie
  older than the editor's last password change → 303 to ``/desk/sign-in?next=PATH``; the
  wrong role → 403. ``tests/test_desk_security.py`` walks the router and checks every
  ``/desk`` route but the few ``Desk.add_open`` ones (signing in, the one-time link).
- ``Desk.editor(request)`` is the signed-in ``records.Editor`` (``.role``, ``.is_admin``).
- ``Desk.render(request, TEMPLATE, TITLE, status, **values)`` renders
  ``templates/web/desk/TEMPLATE``, which extends ``web/desk/page.html.j2`` (the public
  pages' frame with the desk's menu) and gets ``editor``, ``csrf`` and the values. Every form
  posts ``<input type="hidden" name="csrf" value="{{ csrf }}">``. ``Desk.message`` says what
  happened, with next steps.
- ``Desk.add_form(path, handler, back=PAGE)`` is a form's POST: its CSRF token checked (a
  page with the way back otherwise), then the plain ``handler`` in the thread pool. A form
  whose fields the handler reads uses ``Desk.form(request)`` in an async handler instead
  (``BadRequest`` otherwise: answer ``Desk.refused``). A GET never changes anything.
- ``Desk.audit(editor, action, target, detail)`` records an action (``models.AuditAction``,
  ``records.AuditTarget(kind, id)``) in the audit log that ``/desk/audit`` shows to admins.
- ``frame.MENU`` is the desk's menu: a section shows in it once a GET page answers at its
  path, to the roles it names.
- Handlers that touch the database are plain ``def`` (Starlette runs them in the thread pool)
  or call ``run_in_threadpool``.
- ``Desk.config``, ``Desk.store`` and ``Desk.now`` (the injected clock) are the app's own;
  ``Desk.wake()`` wakes the worker that sends queued mail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from newsletter.config import Config
from newsletter.store import Store
from newsletter.web.desk.admin import Audit, Editors
from newsletter.web.desk.editions import Editions
from newsletter.web.desk.feeds import Feeds
from newsletter.web.desk.frame import Desk
from newsletter.web.desk.home import Home
from newsletter.web.desk.readers import Readers
from newsletter.web.desk.signin import SignIn
from newsletter.web.desk.today import Today

# each section of the desk: a class that registers its pages on the Desk it is given
SECTIONS: tuple[Callable[[Desk], object], ...] = (
    Home,
    SignIn,
    Today,
    Editions,
    Feeds,
    Readers,
    Editors,
    Audit,
)


def make_desk(
    config: Config,
    store: Store,
    *,
    now: Callable[[], datetime],
    wake: Callable[[], None] = lambda: None,
) -> Desk:
    """The desk over one store, every section's routes on it (``Desk.routes``); ``now`` is the
    clock, ``wake`` wakes the worker that sends queued mail (an editor's one-time link)."""
    desk = Desk(config, store, now=now, wake=wake)
    for section in SECTIONS:
        section(desk)
    return desk


__all__ = ["Desk", "make_desk"]
