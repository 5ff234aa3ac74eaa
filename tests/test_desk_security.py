"""The desk's locks: every ``/desk`` page (listed from the router, so a page added later is
checked too) sends a visitor without a session to sign in; a wrong CSRF token, a disabled
editor's session, an expired session and the 11th wrong password in a minute are refused; an
editor cannot reach the admins' pages; no desk page shows a reader's token."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.routing import BaseRoute, Mount, Route

from newsletter.delivery.mailers import make_mailer
from newsletter.errors import ConfigError
from newsletter.models import AuditAction, EditorRole, SubscriberStatus
from newsletter.readers.subscriptions import add_subscriber
from newsletter.records import AuditTarget
from newsletter.web.app import create_app
from newsletter.web.desk import accounts
from newsletter.web.desk.frame import ROLE
from newsletter.web.desk.sessions import COOKIE, Session, Signer
from newsletter.web.ratelimit import RateLimit
from tests.conftest import NOW
from tests.desk import ADMIN, EDITOR, PASSWORD, DeskSite, csrf_of, desk_site, post_form

# the desk's pages that answer without a session: signing in, and the one-time link
OPEN = {"/desk/sign-in", "/desk/set-password/{token}"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    with desk_site(tmp_path / "desk") as started:
        yield started


def every_route(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Each route of the app with its full path, through mounts."""
    for route in routes:
        if isinstance(route, Mount):
            inner = route.routes
            assert inner or not (prefix + route.path).startswith("/desk"), route  # unwalkable
            yield from every_route(inner, prefix + route.path)
        else:
            assert isinstance(route, Route), route
            yield prefix + route.path, route


def desk_routes(site: DeskSite, number: int = 1) -> list[tuple[str, str]]:
    """Every (method, path) of the app under /desk, path parameters filled with dummies
    (``number`` for a whole number)."""
    app = create_app(site.config, site.store, make_mailer(site.config), now=site.clock)
    found = []
    for full, route in every_route(app.routes):
        if not full.startswith("/desk") or full in OPEN:
            continue
        dummy = lambda m: str(number) if m[2] == ":int" else "dummy"  # noqa: E731
        path = re.sub(r"\{(\w+)(:\w+)?\}", dummy, full)
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
        # a form's address is no page to come back to: the desk's, without the form's page
        target = f"/desk/sign-in?next={quote(path if method == 'GET' else '/desk', safe='/')}"
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
    assert answer.headers["location"] == "/desk/sign-in?next=/desk&ended=1"
    assert "Your session ended. Sign in again" in client.get(answer.headers["location"]).text


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


def admin_routes(site: DeskSite) -> list[tuple[str, str]]:
    """Every (method, path) of the desk that needs an admin, from the router."""
    app = create_app(site.config, site.store, make_mailer(site.config), now=site.clock)
    found = []
    for full, route in every_route(app.routes):
        if getattr(route.endpoint, ROLE, None) == EditorRole.ADMIN:
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(site.editor(ADMIN).id), full)
            found += [(m, path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


def test_an_editor_cannot_reach_the_admins_pages(site: DeskSite) -> None:
    routes = admin_routes(site)
    assert ("GET", "/desk/editors") in routes and ("GET", "/desk/audit") in routes
    editor, admin = site.sign_in(EDITOR), site.sign_in(ADMIN)
    csrf = csrf_of(editor.get("/desk").text)
    for method, path in routes:
        answer = editor.request(method, path, data={"csrf": csrf})
        assert answer.status_code == 403, (method, path)
        assert "This page is for the desk&#39;s admins." in answer.text
    assert site.editor(ADMIN).disabled is False  # nothing was done
    assert admin.get("/desk/editors").status_code == 200
    home = editor.get("/desk")
    assert 'href="/desk/editors"' not in home.text and 'href="/desk/audit"' not in home.text
    assert 'href="/desk/editors"' in admin.get("/desk").text


def test_no_desk_page_shows_a_reader_s_token(site: DeskSite) -> None:
    reader, _ = add_subscriber(
        site.store,
        "reader@example.org",
        name="Rita Reader",
        sectors=(),
        known_sectors=site.config.sector_slugs,
        status=SubscriberStatus.CONFIRMED,
        now=site.clock(),
    )
    assert len(reader.token) >= 20
    admin = site.sign_in(ADMIN)
    target = AuditTarget("reader", str(reader.id))
    site.store.editors.record_audit(site.editor(ADMIN), AuditAction.SIGN_IN, target, now=NOW)
    pages = [(m, p) for m, p in desk_routes(site, number=reader.id) if m == "GET"]
    assert len(pages) >= 3
    for _, path in pages:
        answer = admin.get(path)
        assert reader.token not in answer.text, path
        assert reader.token not in str(answer.headers), path


def test_sign_in_goes_back_to_the_page_asked_for_and_never_elsewhere(site: DeskSite) -> None:
    client = site.client()
    asked = client.get("/desk/audit?before=5")
    assert asked.headers["location"] == "/desk/sign-in?next=/desk/audit%3Fbefore%3D5"
    page = client.get(asked.headers["location"])
    assert 'name="next" value="/desk/audit?before=5"' in page.text
    fields = {"email": ADMIN, "password": PASSWORD, "next": "/desk/audit?before=5"}
    done = post_form(client, "/desk/sign-in", fields)
    assert done.headers["location"] == "/desk/audit?before=5"
    for elsewhere in ("https://evil.example/desk", "//evil.example/desk", "/archive", "/desk\\x"):
        other = site.client()
        fields = {"email": ADMIN, "password": PASSWORD, "next": elsewhere}
        assert post_form(other, "/desk/sign-in", fields).headers["location"] == "/desk"


def test_the_session_cookie_is_http_only_same_site_and_secure_over_https(
    tmp_path: Path,
) -> None:
    with desk_site(tmp_path, {"publication": {"base_url": "https://desk.example.org"}}) as site:
        client = site.client()
        page = client.get("/desk/sign-in")
        fields = {"csrf": "t" * 22, "email": EDITOR, "password": PASSWORD}
        client.cookies.set("csrf", "t" * 22)  # the Secure cookie did not come back over http
        answer = client.post("/desk/sign-in", data=fields)
        assert page.status_code == 200 and answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        for part in ("HttpOnly", "SameSite=lax", "Secure", "Path=/desk", "Max-Age=43200"):
            assert part in cookie, cookie


def test_a_wrong_address_and_a_wrong_password_get_the_same_answer(site: DeskSite) -> None:
    client = site.client()
    nobody = post_form(client, "/desk/sign-in", {"email": "no@example.org", "password": "x" * 12})
    wrong = post_form(client, "/desk/sign-in", {"email": EDITOR, "password": "x" * 12})
    assert nobody.status_code == wrong.status_code == 401
    said = "That address and password do not match an editor who may sign in."
    assert said in nobody.text and said in wrong.text


def test_the_limit_per_client_address_counts_every_account(site: DeskSite) -> None:
    client = site.client()
    for n in range(10):
        fields = {"email": f"guess{n}@example.org", "password": "x" * 12}
        assert post_form(client, "/desk/sign-in", fields).status_code == 401
    refused = post_form(client, "/desk/sign-in", {"email": ADMIN, "password": PASSWORD})
    assert refused.status_code == 429
    lines = site.store.editors.audit_log(limit=1)
    assert lines[0].action == AuditAction.SIGN_IN_REFUSED and "over the limit" in lines[0].detail


def test_the_signing_key_file_is_made_owner_only_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY", raising=False)
    with desk_site(tmp_path) as site:
        key_file = tmp_path / "secret.key"
        assert not key_file.exists()  # nothing made until a desk page needs it
        site.sign_in(EDITOR)
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert len(key_file.read_text(encoding="utf-8").strip()) == 64


def test_the_signing_key_from_the_environment_makes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "a key from the environment")
    with desk_site(tmp_path) as site:
        editor = site.editor(EDITOR)
        session = Session(editor.id, editor.session_version, NOW)
        lifetime = timedelta(hours=12)
        client = site.client()
        client.cookies.set(COOKIE, Signer(lambda: b"another key", lifetime=lifetime).sign(session))
        assert client.get("/desk").status_code == 303
        client.cookies.set(
            COOKIE, Signer(lambda: b"a key from the environment", lifetime=lifetime).sign(session)
        )
        assert client.get("/desk").status_code == 200  # the same cookie under the right key
        assert not (tmp_path / "secret.key").exists()


def test_a_sign_in_limit_never_forgets_the_sign_up_limit_s_hits(site: DeskSite) -> None:
    """Both count in one table: a short window's pruning keeps a longer one's hits."""
    signups = RateLimit("2/10 minutes", "database", store=site.store, now=site.clock)
    sign_ins = RateLimit("10/minute", "database", store=site.store, now=site.clock)
    signups.record("203.0.113.7")
    signups.record("203.0.113.7")
    site.clock.now += timedelta(minutes=3)
    sign_ins.record("desk-ip:203.0.113.7")
    assert signups.blocked("203.0.113.7")
    assert signups.retry_at("203.0.113.7") == NOW + timedelta(minutes=10)
    with pytest.raises(ConfigError, match="a limit counted in the database spans a day at most"):
        RateLimit("10/2 days", "database", store=site.store, now=site.clock, setting="desk.x")


def test_a_form_sent_after_the_session_ended_goes_back_to_its_page_after_signing_in(
    site: DeskSite,
) -> None:
    """The session ends while an editor has the page open: the form they send takes them to
    sign in, saying the session ended and the change was not saved, then back to the page the
    form was on (not to the form's own address, which is no page)."""
    client = site.sign_in(EDITOR)
    page = client.get("/desk/today").text
    site.clock.now += timedelta(hours=13)
    answer = client.post(
        "/desk/today/change",
        data={"csrf": csrf_of(page), "part": "note", "value": "Hello", "was": "", "version": "-"},
        headers={"Referer": f"{site.base}/desk/today"},
    )
    assert answer.status_code == 303
    target = answer.headers["location"]
    assert target.startswith("/desk/sign-in?next=/desk/today&") and "change" not in target
    shown = " ".join(client.get(target).text.split())
    assert "Your session ended" in shown and "was not saved" in shown
    elsewhere = client.post("/desk/today/change", headers={"Referer": "https://evil.example/x"})
    assert elsewhere.headers["location"] == "/desk/sign-in?next=/desk"  # no session to end


def test_opening_a_form_s_address_gets_a_desk_page_that_says_where_to_go(site: DeskSite) -> None:
    """Every POST-only address of the desk, opened (a bookmark, a reload): a 405 in the desk's
    frame with a way back, for an editor and for a visitor alike."""
    client = site.sign_in(EDITOR)
    posts = {path for method, path in desk_routes(site) if method == "POST"}
    gets = {path for method, path in desk_routes(site) if method == "GET"}
    for path in sorted(posts - gets):
        for who in (client, site.client()):
            answer = who.get(path)
            assert answer.status_code == 405, path
            assert "takes a form" in answer.text and 'href="/desk' in answer.text, path
            assert "<footer" in answer.text  # the site's frame
            assert ('href="/desk/editions"' in answer.text) is (who is client), path  # the menu
