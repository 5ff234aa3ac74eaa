"""The public pages in headless Chromium at phone and desktop widths, light and dark: no
horizontal scroll, the sign-up box on each, text contrast measured at WCAG AA; the email's
dark variant measured the same way. Screenshots are kept as test artefacts (in
``test-artifacts/``, or the folder ``NEWSLETTER_ARTIFACTS`` names)."""

from __future__ import annotations

import email
import email.policy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Page

from newsletter.delivery.mailers import make_mailer
from newsletter.web.app import create_app
from tests.browser import chromium
from tests.conftest import ROOT
from tests.test_archive import DAYS, clock_at, publish
from tests.webserver import running

ARTIFACTS = Path(os.environ.get("NEWSLETTER_ARTIFACTS", ROOT / "test-artifacts"))

# the lowest contrast among the visible text of a page: each element's own text against the
# first opaque background behind it (WCAG 2.1 relative luminance); large text needs 3, other 4.5
WORST_CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.right < 0 || el.closest("[aria-hidden=true]")) continue;
    const style = getComputedStyle(el);
    const a = lum(rgb(style.color).slice(0, 3)), b = lum(behind(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    const text = el.textContent.trim().slice(0, 40);
    found.push({ratio: Math.round(ratio * 100) / 100, need, text});
  }
  found.sort((x, y) => x.ratio / x.need - y.ratio / y.need);
  return found.slice(0, 3);
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    config, store, _ = publish(tmp_path_factory.mktemp("site"))
    app = create_app(config, store, make_mailer(config), now=clock_at(DAYS[1]))
    with running(app) as base:
        yield base, config.outbox_dir


def check(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    width = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"{name}: {width} px of horizontal scroll"
    worst = page.evaluate(WORST_CONTRAST)
    assert worst and worst[0]["ratio"] >= worst[0]["need"], f"{name}: low contrast {worst}"


SCHEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")


@pytest.mark.slow
def test_public_pages_fit_every_width_and_read_well_in_both_schemes(
    site: tuple[str, Path],
) -> None:
    base, _ = site
    pages = {
        "archive": "/archive",
        "edition": f"/archive/{DAYS[0].date()}",
        "sector": "/sectors/oil-gas",
    }
    with chromium() as browser:
        for width in (375, 1280):
            for scheme in SCHEMES:
                viewport = {"width": width, "height": 900}
                page = browser.new_page(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
                for name, path in pages.items():
                    page.goto(base + path)
                    assert page.locator("aside.signup form").is_visible()
                    assert page.locator("aside.signup input[type=checkbox]").count() == 9
                    check(page, f"{name}-{width}-{scheme}")
                body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
                assert (body == "rgb(15, 23, 32)") == (scheme == "dark")
                page.close()


@pytest.mark.slow
def test_the_email_reads_well_in_both_schemes(site: tuple[str, Path]) -> None:
    _, outbox = site
    (path, *_) = sorted((outbox / DAYS[0].date().isoformat()).glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'name="color-scheme" content="light dark"' in html
    assert "supported-color-schemes" in html and "prefers-color-scheme: dark" in html
    with chromium() as browser:
        for scheme in SCHEMES:
            for width in (375, 640):
                viewport = {"width": width, "height": 900}
                page = browser.new_page(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
                page.set_content(html)
                check(page, f"email-{width}-{scheme}")
                page.close()
