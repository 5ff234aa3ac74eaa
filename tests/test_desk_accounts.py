"""The desk's accounts: ``newsletter editors`` (add with a password typed twice or a one-time
link, list, disable, enable, remove; the last admin kept), the one-time link (mailed through
the outgoing queue to a real SMTP server, works once, expires, replaced by a newer one), the
admins' editors page with its confirmation step, and the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.delivery.outgoing import CLAIM, drain
from newsletter.models import AuditAction, EditorRole, MailKind
from newsletter.records import AuditTarget
from newsletter.store import Store
from newsletter.web.desk import accounts
from newsletter.web.desk.passwords import verify_password
from tests.conftest import NOW, write_config
from tests.desk import ADMIN, EDITOR, PASSWORD, DeskSite, desk_site, post_form
from tests.smtp_server import Inbox, start_smtp

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    with desk_site(tmp_path / "desk") as started:
        yield started


def editors(config: Path, *args: str, typed: str = "") -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "editors", *args],
        input=typed,
        env={"NEWSLETTER_NOW": NOW.isoformat()},
    )
    return result.exit_code, result.stdout, result.stderr


def open_store(config_path: Path) -> Store:
    config = load_config(config_path)
    return Store.open(config.database_url, privacy_key=config.privacy_key())


def test_editors_add_with_a_password_typed_twice_list_disable_enable_remove(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, {"feeds": []})
    code, out, err = editors(
        path, "add", "Ada@Example.org", "--role", "admin", typed="short\nshort\n"
    )
    assert code != 0 and "Error: a password needs at least 12 characters" in err
    store = open_store(path)
    assert store.editors.editor_list() == []  # nothing stored before the password was good
    typed = f"{PASSWORD}\n{PASSWORD}\n"
    code, out, err = editors(path, "add", "Ada@Example.org", "--role", "admin", typed=typed)
    assert code == 0, err
    assert "Added ada@example.org (admin)" in out
    ada = store.editors.editor_by_email("ada@example.org")
    assert ada is not None and ada.role == EditorRole.ADMIN and ada.has_password
    assert verify_password(store.editors.password_hash(ada.id), PASSWORD)
    assert not verify_password(store.editors.password_hash(ada.id), PASSWORD + "x")
    assert editors(path, "list")[1].rstrip().endswith("\n1 editor")
    code, out, err = editors(path, "add", "ed@example.org", "--name", "Ed Baker", typed=typed)
    assert code == 0 and "Added ed@example.org (editor)" in out
    code, out, err = editors(path, "add", "ed@example.org", typed=typed)
    assert code == 1 and "Error: ed@example.org is an editor already" in err
    code, out, _ = editors(path, "list")
    assert re.search(r"ada@example\.org\s+admin\s+can sign in", out)
    assert re.search(r"ed@example\.org\s+Ed Baker\s+editor\s+can sign in", out)
    assert "2 editors" in out
    assert editors(path, "disable", "ed@example.org")[1].strip() == "ed@example.org disabled"
    assert re.search(r"ed@example\.org\s+Ed Baker\s+editor\s+disabled", editors(path, "list")[1])
    code, out, err = editors(path, "link", "ed@example.org")  # a link could not let them in
    assert code == 1 and "ed@example.org is disabled" in err and "editors enable" in err
    assert "set-password" not in out
    assert editors(path, "enable", "ED@example.org")[0] == 0
    code, _, err = editors(path, "disable", "ada@example.org")
    assert code == 1 and "ada@example.org is the last admin who can sign in" in err
    code, _, err = editors(path, "remove", "ada@example.org")
    assert code == 1 and "last admin" in err
    assert editors(path, "remove", "ed@example.org")[0] == 0
    code, _, err = editors(path, "remove", "ed@example.org")
    assert code == 1 and "no editor has the address ed@example.org" in err
    actions = [line.action for line in reversed(store.editors.audit_log())]
    assert actions == [
        AuditAction.EDITOR_ADDED,
        AuditAction.PASSWORD_SET,
        AuditAction.EDITOR_ADDED,
        AuditAction.PASSWORD_SET,
        AuditAction.EDITOR_DISABLED,
        AuditAction.EDITOR_ENABLED,
        AuditAction.EDITOR_REMOVED,
    ]
    assert all(line.editor_email.startswith("shell") for line in store.editors.audit_log())
    store.close()


def test_editors_add_link_prints_the_link_while_delivery_is_the_outbox(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"feeds": [], "publication": {"base_url": "https://n.example"}})
    code, out, err = editors(path, "add", "ed@example.org", "--link")
    assert code == 0, err
    found = re.search(r"https://n\.example/desk/set-password/(\S+)", out)
    assert found is not None and "works once, for 24 hours" in out
    store = open_store(path)
    link = store.editors.link_by_token(found.group(1))
    assert link is not None and link.expires_at == NOW + timedelta(hours=24)
    assert store.outgoing.due_mail(rule=CLAIM, now=NOW, limit=10) == []  # no email
    store.close()


def test_a_link_goes_by_email_through_the_outgoing_queue(tmp_path: Path) -> None:
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    try:
        smtp = {"host": "127.0.0.1", "port": port, "backoff_seconds": 0.01}
        settings: dict[str, object] = {"feeds": [], "delivery": {"backend": "smtp", "smtp": smtp}}
        path = write_config(tmp_path, settings)
        code, out, err = editors(path, "add", "ed@example.org", "--name", "Ed Baker", "--link")
        assert code == 0, err
        assert "A one-time link to set a password is queued for ed@example.org" in out
        config = load_config(path)
        store = open_store(path)
        (queued,) = store.outgoing.due_mail(rule=CLAIM, now=NOW, limit=10)
        assert queued.kind == MailKind.EDITOR_LINK and queued.subscriber_id is None
        mailer = make_mailer(config)
        assert drain(config, store, mailer, now=lambda: NOW) == 1
        mailer.close()
        assert inbox.wait_for(1) and inbox.to == ["ed@example.org"]
        (message,) = inbox.messages
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        assert "Hello, Ed." in text and "it works once, for 24 hours" in text
        found = re.search(r"/desk/set-password/(\S+)", text)
        assert found is not None and store.editors.link_by_token(found.group(1)) is not None
        assert store.outgoing.due_mail(rule=CLAIM, now=NOW + timedelta(days=1), limit=10) == []
        store.close()
    finally:
        controller.stop()


def _link(site: DeskSite, email: str = EDITOR) -> str:
    """A new one-time link for ``email``, as its path."""
    editor, admin = site.editor(email), site.editor(ADMIN)
    url = accounts.issue_link(site.config, site.store, editor, actor=admin, now=site.clock())
    return url.removeprefix(site.config.publication.base_url)


def test_the_one_time_link_sets_a_password_once(site: DeskSite) -> None:
    path = _link(site)
    client = site.client()
    with_session = site.sign_in(EDITOR)
    page = client.get(path)
    assert page.status_code == 200 and f"as {EDITOR}" in page.text
    fields = {"password": NEW_PASSWORD, "again": NEW_PASSWORD + "!"}
    differ = post_form(client, path, fields)
    assert differ.status_code == 400 and "The two passwords differ" in differ.text
    short = post_form(client, path, {"password": "too short", "again": "too short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    done = post_form(client, path, {"password": NEW_PASSWORD, "again": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/desk/sign-in?set=1"
    assert with_session.get("/desk").status_code == 303  # a new password ends old sessions
    again = client.get(path)
    assert again.status_code == 410 and "This link was used already" in again.text
    csrf = client.cookies["csrf"]
    fields = {"csrf": csrf, "password": PASSWORD + "x", "again": PASSWORD + "x"}
    assert client.post(path, data=fields).status_code == 410
    site.sign_in(EDITOR, NEW_PASSWORD)
    refused = post_form(site.client(), "/desk/sign-in", {"email": EDITOR, "password": PASSWORD})
    assert refused.status_code == 401


def test_a_link_expires_and_a_newer_one_replaces_it(site: DeskSite) -> None:
    client = site.client()
    old, new = _link(site), _link(site)
    assert client.get(old).status_code == 410  # replaced
    assert client.get(new).status_code == 200
    site.clock.now += timedelta(hours=24)
    expired = client.get(new)
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert client.get(new + "x").status_code == 404
    assert client.get("/desk/set-password/1.forged").status_code == 404
    assert client.get("/desk/set-password/nothing").status_code == 404


def test_a_disabled_editor_s_link_cannot_be_used(site: DeskSite) -> None:
    path = _link(site)
    admin = site.editor(ADMIN)
    accounts.set_disabled(site.store, site.editor(EDITOR), True, actor=admin, now=site.clock())
    assert site.client().get(path).status_code == 410


def test_an_admin_adds_an_editor_and_passes_the_link_on(site: DeskSite) -> None:
    admin = site.sign_in(ADMIN)
    fields = {"email": "New@Example.org", "name": "Nia", "role": "editor"}
    added = post_form(admin, "/desk/editors", fields)
    assert added.status_code == 200 and "new@example.org is an editor now." in added.text
    found = re.search(r'href="http://desk\.example\.org(/desk/set-password/[^"]+)"', added.text)
    assert found is not None
    newcomer = site.client()
    post_form(newcomer, found.group(1), {"password": NEW_PASSWORD, "again": NEW_PASSWORD})
    site.sign_in("new@example.org", NEW_PASSWORD)
    again = post_form(admin, "/desk/editors", fields)
    assert again.status_code == 400 and "new@example.org is an editor already" in again.text
    bad = post_form(admin, "/desk/editors", {**fields, "email": "not an address"})
    assert bad.status_code == 400


def test_an_admin_disables_enables_and_removes_after_confirming(site: DeskSite) -> None:
    admin, editor = site.sign_in(ADMIN), site.sign_in(EDITOR)
    ed = site.editor(EDITOR)
    disabled = post_form(admin, f"/desk/editors/{ed.id}/disable", {}, page="/desk/editors")
    assert disabled.status_code == 303
    assert editor.get("/desk").status_code == 303 and site.editor(EDITOR).disabled
    post_form(admin, f"/desk/editors/{ed.id}/enable", {}, page="/desk/editors")
    assert not site.editor(EDITOR).disabled
    confirm = admin.get(f"/desk/editors/{ed.id}/remove")
    assert confirm.status_code == 200 and f"Remove {EDITOR}" in confirm.text
    assert site.store.editors.editor_by_email(EDITOR) is not None  # a GET changes nothing
    removed = post_form(
        admin, f"/desk/editors/{ed.id}/remove", {}, page=f"/desk/editors/{ed.id}/remove"
    )
    assert removed.status_code == 303 and site.store.editors.editor_by_email(EDITOR) is None
    me = site.editor(ADMIN)
    own = post_form(admin, f"/desk/editors/{me.id}/disable", {}, page="/desk/editors")
    assert own.status_code == 400 and "You cannot disable your own account" in own.text
    assert admin.get("/desk/editors/999/remove").status_code == 404


def test_the_audit_log_says_who_did_what_to_what_and_when(site: DeskSite) -> None:
    refused = post_form(site.client(), "/desk/sign-in", {"email": EDITOR, "password": "wrong" * 3})
    assert refused.status_code == 401
    site.clock.now += timedelta(minutes=1)
    editor = site.sign_in(EDITOR)
    post_form(editor, "/desk/sign-out", {}, page="/desk")
    admin = site.sign_in(ADMIN)
    ed = site.editor(EDITOR)
    post_form(admin, f"/desk/editors/{ed.id}/disable", {}, page="/desk/editors")
    lines = site.store.editors.audit_log(limit=5)
    said = [(x.editor_email, x.action, x.target.kind, x.target.id) for x in reversed(lines)]
    assert said == [
        (EDITOR, AuditAction.SIGN_IN_REFUSED, "desk", ""),
        (EDITOR, AuditAction.SIGN_IN, "desk", ""),
        (EDITOR, AuditAction.SIGN_OUT, "desk", ""),
        (ADMIN, AuditAction.SIGN_IN, "desk", ""),
        (ADMIN, AuditAction.EDITOR_DISABLED, "editor", EDITOR),
    ]
    assert lines[-1].at == NOW and lines[0].at == NOW + timedelta(minutes=1)
    assert lines[-1].detail == "wrong address or password, from 127.0.0.1"
    page = admin.get("/desk/audit")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page.text)
    assert rows[0] == (
        f"{(NOW + timedelta(minutes=1)):%Y-%m-%d %H:%M:%S}",
        ADMIN,
        "editor-disabled",
    )
    assert ("2026-11-25 06:00:00", EDITOR, "sign-in-refused") in rows


def test_the_audit_page_goes_back_a_page_at_a_time(site: DeskSite) -> None:
    admin = site.editor(ADMIN)
    for n in range(150):
        site.store.editors.record_audit(
            admin, AuditAction.SIGN_IN, AuditTarget("desk", str(n)), now=NOW
        )
    client = site.sign_in(ADMIN)
    first = client.get("/desk/audit")
    older = re.search(r'href="(/desk/audit\?before=\d+)"', first.text)
    assert older is not None and first.text.count("<tr><td>") == 100
    second = client.get(older.group(1))
    # the 150, the site's two editors added with passwords (4) and the sign-in, less 100
    assert second.text.count("<tr><td>") == 55
    assert "Older lines" not in second.text


def test_the_desk_s_migration_goes_down_and_up_again(tmp_path: Path, database: str | None) -> None:
    from alembic import command

    from newsletter.store.store import _alembic_config

    store = Store.open(database or f"sqlite:///{tmp_path / 'm.db'}")
    role = EditorRole.EDITOR
    editor = accounts.add_editor(store, EDITOR, name="", role=role, actor=None, now=NOW)
    link = store.editors.issue_link(editor.id, now=NOW, expires_at=NOW + timedelta(hours=1))
    store.outgoing.queue_editor_link(link.id, now=NOW)
    config = _alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0017")
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    assert store.editors.editor_list() == []  # the desk's tables were dropped and made again
    assert store.outgoing.due_mail(rule=CLAIM, now=NOW, limit=10) == []
    store.close()
