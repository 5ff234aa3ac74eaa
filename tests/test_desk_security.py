"""The desk's locks: every ``/desk`` page (listed from the router, so a page added later is
checked too) sends a visitor without a session to sign in; a wrong CSRF token, a disabled
editor's session, an expired session and the 11th wrong password in a minute are refused; an
editor cannot reach the admins' pages; no desk page shows a reader's token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.routing import Route

from newsletter.delivery.mailers import make_mailer
from newsletter.web.app import create_app
from newsletter.web.desk.sessions import COOKIE
from tests.desk import ADMIN, EDITOR, PASSWORD, DeskSite, desk_site, post_form

# the desk's pages that answer without a session: signing in, and the one-time link
OPEN = {"/desk/sign-in", "/desk/set-password/{token}"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    with desk_site(tmp_path / "desk") as started:
        yield started


def desk_routes(site: DeskSite) -> list[tuple[str, str]]:
    """Every (method, path) of the app under /desk, path parameters filled with dummies."""
    app = create_app(site.config, site.store, make_mailer(site.config), now=site.clock)
    found = []
    for route in app.routes:
        assert isinstance(route, Route), route  # a mount would hide its pages from this walk
        if not route.path.startswith("/desk") or route.path in OPEN:
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "1" if m[2] == ":int" else "dummy", route.path)
        found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def test_every_desk_page_sends_a_visitor_without_a_session_to_sign_in(site: DeskSite) -> None:
    routes = desk_routes(site)
    assert ("GET", "/desk") in routes and ("POST", "/desk/sign-out") in routes
    client = site.client()
    client.cookies.set("csrf", "x" * 22)  # a form's token would pass: the session is missing
    for method, path in routes:
        answer = client.request(method, path, data={"csrf": "x" * 22})
        assert answer.status_code == 303, (method, path, answer.status_code)
        target = f"/desk/sign-in?next={quote(path, safe='/')}"
        assert answer.headers["location"] == target, (method, path)


def test_a_forged_or_foreign_cookie_is_no_session(site: DeskSite) -> None:
    client = site.sign_in(EDITOR)
    good = client.cookies[COOKIE]
    payload, _, mac = good.rpartition(".")
    admin = site.editor(ADMIN)
    forged = f"{admin.id}{payload[payload.index('.') :]}.{mac}"
    client = site.client()
    for cookie in (forged, good + "x", "1.1.1", ""):
        client.cookies.set(COOKIE, cookie)
        assert client.get("/desk").status_code == 303


def test_a_signed_in_editor_sees_the_desk(site: DeskSite) -> None:
    client = site.sign_in(EDITOR)
    home = client.get("/desk")
    assert home.status_code == 200
    assert "The editor&#39;s desk" in home.text and f"Signed in as {EDITOR}" in home.text
    assert 'action="/desk/sign-out"' in home.text


def test_a_wrong_csrf_token_is_refused(site: DeskSite) -> None:
    client = site.sign_in(EDITOR)
    client.get("/desk")
    refused = client.post("/desk/sign-out", data={"csrf": "not-the-cookie-s-token"})
    assert refused.status_code == 403
    assert client.get("/desk").status_code == 200  # still signed in
    client = site.client()
    client.get("/desk/sign-in")
    fields = {"csrf": "wrong-token-0123456789", "email": EDITOR, "password": PASSWORD}
    assert client.post("/desk/sign-in", data=fields).status_code == 403


def test_a_disabled_editor_s_session_ends_at_once(site: DeskSite) -> None:
    client, admin = site.sign_in(EDITOR), site.sign_in(ADMIN)
    assert client.get("/desk").status_code == 200
    editor = site.editor(EDITOR)
    from newsletter.web.desk import accounts

    accounts.set_disabled(site.store, editor, True, actor=site.editor(ADMIN), now=site.clock())
    assert client.get("/desk").status_code == 303
    assert admin.get("/desk").status_code == 200
    client = site.client()
    refused = post_form(client, "/desk/sign-in", {"email": EDITOR, "password": PASSWORD})
    assert refused.status_code == 401


def test_a_session_expires_after_session_hours(site: DeskSite) -> None:
    client = site.sign_in(EDITOR)
    site.clock.now += timedelta(hours=11, minutes=59)
    assert client.get("/desk").status_code == 200
    site.clock.now += timedelta(minutes=1)
    answer = client.get("/desk")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk/sign-in?next=/desk"


def test_signing_out_ends_the_session(site: DeskSite) -> None:
    client = site.sign_in(EDITOR)
    kept = client.cookies[COOKIE]
    answer = post_form(client, "/desk/sign-out", {}, page="/desk")
    assert answer.status_code == 303 and answer.headers["location"] == "/desk/sign-in"
    client.cookies.set(COOKIE, kept)  # a copy of the cookie taken before
    assert client.get("/desk").status_code == 303


def test_the_eleventh_wrong_password_in_a_minute_is_refused(site: DeskSite) -> None:
    client = site.client()
    for _ in range(10):
        wrong = post_form(client, "/desk/sign-in", {"email": EDITOR, "password": "nope" * 4})
        assert wrong.status_code == 401
        site.clock.now += timedelta(seconds=5)
    refused = post_form(client, "/desk/sign-in", {"email": EDITOR, "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many wrong passwords. Try again at 06:01:00 UTC, in 10 seconds" in refused.text
    assert refused.headers["retry-after"] == "10"
    site.clock.now += timedelta(seconds=10)
    assert (
        post_form(client, "/desk/sign-in", {"email": EDITOR, "password": PASSWORD}).status_code
        == 303
    )
