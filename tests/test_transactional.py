"""The transactional emails (confirmation, welcome, already subscribed, an editor's one-time
link to the desk), rendered and sent through the outbox as the web app's worker sends them: a
greeting that names no time of day (they go at any hour), the welcome's way to the archive, and
the light and dark schemes, looked at in Chromium."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.delivery.outgoing import drain, send_mail
from newsletter.models import EditorRole, MailKind, MailStatus
from newsletter.readers.subscriptions import add_subscriber
from newsletter.records import Outgoing
from newsletter.store import Store
from tests.browser import chromium
from tests.conftest import NOW, write_config
from tests.test_archive_browser import SCHEMES, check


def sent(tmp_path: Path, kind: MailKind) -> tuple[str, str, str]:
    """One email of ``kind`` to Ana Reader, through the outbox: (HTML, text, base URL)."""
    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url)
    ana, _ = add_subscriber(
        store, "ana@example.com", name="Ana Reader", known_sectors=config.sector_slugs, now=NOW
    )
    if kind == MailKind.EDITOR_LINK:  # to an editor of the desk, through the worker's queue
        editor = store.editors.add_editor(
            "ana@example.com", name="Ana Reader", role=EditorRole.EDITOR, now=NOW
        )
        assert editor is not None
        link = store.editors.issue_link(editor.id, now=NOW, expires_at=NOW + timedelta(hours=24))
        store.outgoing.queue_editor_link(link.id, now=NOW)
        assert drain(config, store, make_mailer(config), now=lambda: NOW) == 1
    else:
        mail = Outgoing(1, ana.id, kind, ana.name, ("oil-gas",), MailStatus.PENDING, 0, NOW)
        send_mail(config, make_mailer(config), ana, mail, day=NOW.date())
    store.close()
    (path,) = (config.outbox_dir / "other").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return html, text, config.publication.base_url.rstrip("/")


@pytest.mark.parametrize("kind", list(MailKind))
def test_transactional_emails_name_no_time_of_day_and_have_dark_styles(
    tmp_path: Path, kind: MailKind
) -> None:
    html, text, base = sent(tmp_path, kind)
    for part in (html, text):
        assert "morning," not in part and "Good morning" not in part
    assert 'name="color-scheme" content="light dark"' in html
    assert "@media (prefers-color-scheme: dark)" in html
    if kind == MailKind.WELCOME:
        assert text.startswith("Hello, Ana.") and "<p>Hello, Ana.</p>" in html
        assert f"{base}/archive" in text and f'href="{base}/archive"' in html
    if kind == MailKind.EDITOR_LINK:
        assert text.startswith("Hello, Ana.") and "<p>Hello, Ana.</p>" in html
        assert f"{base}/desk/set-password/" in text and f'href="{base}/desk/set-password/' in html


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(MailKind))
def test_transactional_emails_read_well_in_both_schemes(tmp_path: Path, kind: MailKind) -> None:
    html, _, _ = sent(tmp_path, kind)
    with chromium() as browser:
        for scheme in SCHEMES:
            page = browser.new_page(viewport={"width": 375, "height": 800}, color_scheme=scheme)
            page.set_content(html)
            check(page, f"{kind}-375-{scheme}")
            body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
            assert (body == "rgb(15, 23, 32)") == (scheme == "dark")
            page.close()
