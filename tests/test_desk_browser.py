"""The desk in Chromium: an editor signs in, sees the desk's home page with its menu, signs
out and is back at the sign-in page; the desk's page that was asked for before signing in is
the one shown after. Screenshots are kept in ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.conftest import ROOT
from tests.desk import ADMIN, EDITOR, PASSWORD, DeskSite, desk_site

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    with desk_site(tmp_path / "desk") as started:
        yield started


@pytest.mark.slow
def test_an_editor_signs_in_sees_the_desk_and_signs_out(site: DeskSite) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 800})
        page.goto(f"{site.base}/desk")
        assert page.url == f"{site.base}/desk/sign-in?next=/desk"
        page.fill("#email", EDITOR)
        page.fill("#password", PASSWORD + "?")
        page.click("main button[type=submit]")
        assert page.locator("main .error").inner_text().startswith("That address and password")
        assert page.input_value("#email") == EDITOR
        page.fill("#password", PASSWORD)
        page.click("main button[type=submit]")
        assert page.url == f"{site.base}/desk"
        assert page.locator("h1").inner_text() == "The editor's desk"
        assert f"Signed in as {EDITOR} (editor)" in page.locator(".who").inner_text()
        menu = page.locator("nav.desk ul a").all_inner_texts()
        assert "Editors" not in menu and "Audit" not in menu  # an editor's menu
        page.screenshot(path=str(ARTIFACTS / "desk-home.png"), full_page=True)
        page.click("nav.desk button:has-text('Sign out')")
        assert page.url == f"{site.base}/desk/sign-in"
        page.goto(f"{site.base}/desk")
        assert page.url.startswith(f"{site.base}/desk/sign-in")


@pytest.mark.slow
def test_an_admin_goes_back_to_the_page_asked_for(site: DeskSite) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(f"{site.base}/desk/audit")
        page.fill("#email", ADMIN)
        page.fill("#password", PASSWORD)
        page.click("main button[type=submit]")
        assert page.url == f"{site.base}/desk/audit"
        assert page.locator("h1").inner_text() == "Audit log"
        menu = page.locator("nav.desk ul a").all_inner_texts()
        assert {"Editors", "Audit"} <= set(menu)
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the audit page scrolls sideways on a phone"
