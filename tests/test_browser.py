"""The rendered email in a real browser, at phone and desktop widths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from newsletter import flows
from newsletter.config import Config
from newsletter.flows.preview import preview
from newsletter.store import Store
from tests.browser import chromium
from tests.conftest import NOW


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def demo_html(demo_config: Config, tmp_path: Path) -> Path:
    store = Store.open(demo_config.database_url)
    flows.collect_all(demo_config, store, now=NOW)
    result = preview(demo_config, store, out_dir=tmp_path / "out", now=NOW)
    assert result.html_path is not None
    return result.html_path


@pytest.mark.parametrize("width", [375, 600])
def test_email_fits_the_screen_with_safe_links_and_alt_text(
    browser: Browser, demo_html: Path, width: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(demo_html.as_uri())
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"horizontal scrolling at {width}px: {scroll_width}px wide"
    hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")
    assert len(hrefs) > 20
    ids = set(page.eval_on_selector_all("[id]", "nodes => nodes.map(n => n.id)"))
    inside = [h for h in hrefs if h and h.startswith("#")]
    assert inside and all(h[1:] in ids for h in inside), (inside, ids)  # the contents line
    outside = [h for h in hrefs if h not in inside]
    assert all(h and h.startswith(("https://", "http://")) for h in outside), outside
    images = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.getAttribute('alt'))")
    assert all(alt is not None and alt.strip() for alt in images)
    # every heading and story link can be seen and read
    assert page.locator("h1").count() == 1
    first_story = page.locator("h3 a").first
    assert first_story.is_visible()
    box = first_story.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    # the brief on top, then the contents line, then the sections
    tops = [
        page.get_by_text(text, exact=exact).first.bounding_box()
        for text, exact in (("Today's brief", True), ("In this edition:", True))
    ]
    first_section = page.locator("h2[id]").first.bounding_box()
    assert all(tops) and first_section is not None
    assert tops[0]["y"] < box["y"] < tops[1]["y"] < first_section["y"]  # type: ignore[index]
    page.close()
