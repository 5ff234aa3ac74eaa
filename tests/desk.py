"""The desk on a real app served on 127.0.0.1, with an admin and an editor who have passwords,
and httpx clients signed in as them: for the desk's tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import EditorRole
from newsletter.records import Editor
from newsletter.store import Store
from newsletter.web.app import create_app
from newsletter.web.desk import accounts
from tests.conftest import NOW, write_config
from tests.walk import Clock
from tests.webserver import running

ADMIN, EDITOR = "ada@example.org", "ed@example.org"
PASSWORD = "correct horse battery"


@dataclass
class DeskSite:
    base: str
    config: Config
    store: Store
    clock: Clock
    clients: list[httpx.Client] = field(default_factory=list)  # closed with the site

    def editor(self, email: str) -> Editor:
        found = self.store.editors.editor_by_email(email)
        assert found is not None, email
        return found

    def client(self) -> httpx.Client:
        """A new browser, as it were: its own cookies (closed with the site)."""
        client = httpx.Client(base_url=self.base, follow_redirects=False, timeout=30)
        self.clients.append(client)
        return client

    def sign_in(self, email: str = EDITOR, password: str = PASSWORD) -> httpx.Client:
        """A client signed in as ``email`` (the sign-in must succeed)."""
        client = self.client()
        answer = post_form(client, "/desk/sign-in", {"email": email, "password": password})
        assert answer.status_code == 303, answer.text[:2000]
        return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


def post_form(
    client: httpx.Client, path: str, fields: dict[str, str], *, page: str = ""
) -> httpx.Response:
    """Open the page holding the form (``page``, else ``path``) for its CSRF token, then post
    the form with it."""
    opened = client.get(page or path)
    assert opened.status_code == 200, (opened.status_code, opened.text[:2000])
    return client.post(path, data={"csrf": csrf_of(opened.text), **fields})


def add_editor(store: Store, email: str, role: EditorRole, password: str = PASSWORD) -> Editor:
    editor = accounts.add_editor(store, email, name="", role=role, actor=None, now=NOW)
    accounts.set_password(store, editor, password, password, actor=None, now=NOW)
    found = store.editors.editor_by_email(email)
    assert found is not None
    return found


@contextmanager
def desk_site(folder: Path, settings: dict[str, object] | None = None) -> Iterator[DeskSite]:
    """The app with the desk, an admin (``ADMIN``) and an editor (``EDITOR``) whose password is
    ``PASSWORD``; served over plain HTTP, so cookies are not marked Secure."""
    data: dict[str, object] = {
        "feeds": [],
        "publication": {"base_url": "http://desk.example.org"},
        **(settings or {}),
    }
    config = load_config(write_config(folder, data))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    add_editor(store, ADMIN, EditorRole.ADMIN)
    add_editor(store, EDITOR, EditorRole.EDITOR)
    clock = Clock(NOW)
    try:
        with running(create_app(config, store, make_mailer(config), now=clock)) as base:
            site = DeskSite(base, config, store, clock)
            try:
                yield site
            finally:
                for client in site.clients:
                    client.close()
    finally:
        store.close()
