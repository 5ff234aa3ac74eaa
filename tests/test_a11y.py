"""Accessibility: axe-core run inside Chromium on every public, reader and editor page (the
preview and the desk) finds no violation of impact serious or critical (contrast, names of
controls and links, landmarks, language, ...). Needs axe-core (`npm install --prefix
tests/a11y`; `.ci/run` installs it and sets ``NEWSLETTER_REQUIRE_AXE=1``, which turns the skip
into a failure)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Browser, Page

from newsletter import flows
from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from newsletter.web.desk import accounts
from newsletter.web.preview import create_app
from tests.axe import axe_script, serious_violations
from tests.browser import chromium
from tests.conftest import NOW
from tests.desk import ADMIN, EDITOR, PASSWORD, DeskSite, desk_site
from tests.test_web_preview import _publication
from tests.walk import PUBLIC, Site, expired_walk, published_site, reader_walk
from tests.webserver import running

SCHEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with published_site(tmp_path_factory.mktemp("a11y")) as published:
        yield published


def _page(browser: Browser, width: int, scheme: Literal["light", "dark"] = "light") -> Page:
    # the readers' pages forbid inline scripts (their CSP): axe is injected as one
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, bypass_csp=True
    )
    return context.new_page()


def test_the_sign_up_page_has_no_serious_violation(site: Site) -> None:
    axe_script()
    with chromium() as browser:
        page = _page(browser, 1280)
        page.goto(f"{site.base}/subscribe")
        assert serious_violations(page) == []
        page.fill("#email", "a@example.com")
        page.fill("#name", "<Ana>")
        page.click("button[type=submit]")  # the form again, with the error to correct
        assert page.locator("main .error").is_visible()
        assert serious_violations(page) == []


@pytest.mark.slow
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_no_public_or_reader_page_has_a_serious_violation(
    site: Site, width: int, scheme: Literal["light", "dark"]
) -> None:
    axe_script()  # skipped (or failed under .ci/run) before any work without it
    found: dict[str, list[str]] = {}
    with chromium() as browser:
        page = _page(browser, width, scheme)
        for name, path in PUBLIC.items():
            page.goto(site.base + path)
            found[name] = serious_violations(page)
        tag = f"{width}-{scheme}"
        for name in reader_walk(page, site, f"axe-{tag}@example.com"):
            found[name] = serious_violations(page)
        for name in expired_walk(page, site, f"axe-late-{tag}@example.com"):
            found[name] = serious_violations(page)
    assert len(found) == len(PUBLIC) + 12  # every page was audited
    assert {name: v for name, v in found.items() if v} == {}


@pytest.mark.slow
def test_no_editor_page_has_a_serious_violation(demo_dir: Path) -> None:
    axe_script()
    config_path = _publication(demo_dir)
    found: dict[str, list[str]] = {}
    with running(create_app(config_path, now=lambda: NOW)) as base, chromium() as browser:
        page = _page(browser, 1024)
        for name, path in (("preview", "/"), ("stats-empty", "/stats")):
            page.goto(base + path)
            found[name] = serious_violations(page)
        page.goto(base + "/")
        form = page.locator("aside form").first
        form.locator("select").select_option("business-politics")
        form.locator("button").click()
        page.locator(".note.done").wait_for()
        found["moved"] = serious_violations(page)
        _send_today(config_path)
        for name, path in (("stats", "/stats"), ("preview-sent", "/")):
            page.goto(base + path)
            found[name] = serious_violations(page)
        assert page.locator(".note.fixed").inner_text().startswith("Sent:")
    assert {name: v for name, v in found.items() if v} == {}


def _send_today(config_path: Path) -> None:
    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    try:
        add_subscriber(store, "ed@example.com", known_sectors=config.sector_slugs, now=NOW)
        later = NOW + timedelta(minutes=5)
        report = flows.send_edition(config, store, make_mailer(config), now=lambda: later)
        assert report.sent == 1
    finally:
        store.close()


def _desk_walk(page: Page, desk: DeskSite) -> Iterator[str]:
    """The desk's pages, in the browser: signing in (with a mistake), the home page, the
    admins' pages, the one-time link's form and a spent link, an editor refused a page."""
    page.goto(f"{desk.base}/desk/sign-in")
    yield "desk-sign-in"
    page.fill("#email", ADMIN)
    page.fill("#password", "not the password")
    page.click("main button[type=submit]")
    yield "desk-sign-in-refused"
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    yield "desk-home"
    page.goto(f"{desk.base}/desk/editors")
    size = page.viewport_size or {"width": 0}
    page.fill("#email", f"new-{size['width']}-{len(desk.store.editors.editor_list())}@example.org")
    page.click("main form[action='/desk/editors'] button")
    yield "desk-editors"
    page.goto(f"{desk.base}/desk/editors/{desk.editor(EDITOR).id}/remove")
    yield "desk-remove"
    page.goto(f"{desk.base}/desk/audit")
    yield "desk-audit"
    editor = desk.editor(EDITOR)
    url = accounts.issue_link(desk.config, desk.store, editor, actor=None, now=desk.clock())
    path = url.removeprefix(desk.config.publication.base_url)
    page.goto(desk.base + path)
    yield "desk-set-password"
    desk.store.editors.use_link(int(path.rpartition("/")[2].split(".")[0]), now=desk.clock())
    page.goto(desk.base + path)
    yield "desk-link-spent"
    page.goto(f"{desk.base}/desk")
    page.click("nav.desk button:has-text('Sign out')")
    page.fill("#email", EDITOR)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.goto(f"{desk.base}/desk/editors")
    yield "desk-not-for-your-role"
    page.click("nav.desk button:has-text('Sign out')")


@pytest.mark.slow
def test_no_desk_page_has_a_serious_violation(tmp_path: Path) -> None:
    axe_script()
    found: dict[str, list[str]] = {}
    with desk_site(tmp_path / "desk") as desk, chromium() as browser:
        for width in (375, 1280):
            for scheme in SCHEMES:
                page = _page(browser, width, scheme)
                for name in _desk_walk(page, desk):
                    found[f"{name}-{width}-{scheme}"] = serious_violations(page)
                page.context.close()
    assert len(found) == 4 * 9  # every page, at both widths in both schemes, was audited
    assert {name: v for name, v in found.items() if v} == {}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_email_with_the_editor_s_note_has_no_serious_violation(
    scheme: Literal["light", "dark"],
) -> None:
    from dataclasses import replace

    from newsletter.edition import personalize, render
    from newsletter.readers.links import preview_values
    from tests.test_render import _edition_with

    edition, sections = _edition_with("Refiners cut runs as margins slide")
    edition = replace(edition, note="Markets close early.\nNo edition on Friday.")
    variant = render.render_email(render.make_environment(), edition, sections)
    html = personalize.Personalizer(variant).fill(preview_values("https://example.com")).html
    axe_script()
    with chromium() as browser:
        page = _page(browser, 600, scheme)
        page.set_content(html)
        assert page.locator("text=No edition on Friday.").is_visible()
        assert serious_violations(page) == []  # the note's text against its box, in both
