"""Accessibility: axe-core run inside Chromium on every public, reader and editor page finds
no violation of impact serious or critical (contrast, names of controls and links, landmarks,
language, ...). Needs axe-core (`npm install --prefix tests/a11y`; `.ci/run` installs it and
sets ``NEWSLETTER_REQUIRE_AXE=1``, which turns the skip into a failure)."""

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
from newsletter.web.preview import create_app
from tests.axe import axe_script, serious_violations
from tests.browser import chromium
from tests.conftest import NOW
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
