"""`preview --serve`: the live page follows template and config edits and shows errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from newsletter import flows
from newsletter.config import load_config
from newsletter.flows.scaffold import init_publication
from newsletter.store import Store
from newsletter.web.preview import create_app
from tests.browser import chromium
from tests.conftest import NOW
from tests.webserver import running


def _publication(demo_dir: Path) -> Path:
    """The demo with its own copy of the templates, as `newsletter init` makes them."""
    init_publication(demo_dir / "pub")
    config = demo_dir / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\ntemplates: pub/templates\n", encoding="utf-8"
    )
    loaded = load_config(config)
    store = Store.open(loaded.database_url)
    flows.collect_all(loaded, store, now=NOW)
    store.close()
    return config


@pytest.mark.slow
def test_template_edits_show_on_reload_and_errors_show_on_the_page(demo_dir: Path) -> None:
    config = _publication(demo_dir)
    template = demo_dir / "pub" / "templates" / "digest.mjml.j2"
    with running(create_app(config, now=lambda: NOW)) as base:
        first = httpx.get(f"{base}/digest.html")
        assert first.status_code == 200 and "Top story" in first.text
        version = httpx.get(f"{base}/version").json()["version"]

        template.write_text(
            template.read_text(encoding="utf-8").replace("Top story", "Lead story of the day"),
            encoding="utf-8",
        )
        # answered when the watcher sees the edit (a long poll, as the page's script does)
        after = httpx.get(f"{base}/version", params={"after": version}, timeout=30)
        assert after.json()["version"] != version
        second = httpx.get(f"{base}/digest.html")
        assert "Lead story of the day" in second.text and "Top story" not in second.text

        original = template.read_text(encoding="utf-8")
        lines = original.splitlines()
        at = next(n for n, line in enumerate(lines) if "<mj-title>" in line)  # always rendered
        lines[at] = lines[at] + " {{ missing_value.attribute }}"
        template.write_text("\n".join(lines) + "\n", encoding="utf-8")
        broken = httpx.get(f"{base}/digest.html")
        assert broken.status_code == 500
        assert f"{template}, line {at + 1}" in broken.text and "missing_value" in broken.text

        template.write_text(original.replace("{% endfor %}", "{% endfr %}", 1), encoding="utf-8")
        syntax = httpx.get(f"{base}/digest.html")
        assert syntax.status_code == 500 and f"{template}, line " in syntax.text

        template.write_text(original, encoding="utf-8")
        assert httpx.get(f"{base}/digest.html").status_code == 200  # the server lived on
        text = httpx.get(f"{base}/digest.txt")
        assert text.status_code == 200 and "== Top story ==" in text.text


@pytest.mark.slow
def test_the_page_shows_both_widths_the_dark_variant_and_reloads_itself(demo_dir: Path) -> None:
    config = _publication(demo_dir)
    template = demo_dir / "pub" / "templates" / "digest.mjml.j2"
    with running(create_app(config, now=lambda: NOW)) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{base}/")
        frames = page.locator("iframe")
        assert frames.count() == 3
        assert [frames.nth(i).get_attribute("width") for i in range(3)] == ["640", "375", "375"]
        phone = page.frame_locator("iframe").nth(1)
        assert phone.locator("h2").first.inner_text().lower() == "top story"
        # the third is the dark variant, whatever the editor's own setting (light here)
        dark = page.frame_locator("iframe").nth(2)
        background = dark.locator(".bd").first.evaluate(
            "(e) => getComputedStyle(e).backgroundColor"
        )
        assert background == "rgb(15, 23, 32)", background
        assert page.locator("a[href='/digest.txt']").count() == 1
        template.write_text(
            template.read_text(encoding="utf-8").replace("Top story", "Lead story"),
            encoding="utf-8",
        )
        page.wait_for_function(
            "() => (document.querySelectorAll('iframe')[1]?.contentDocument"
            "?.querySelector('h2')?.innerText || '').toLowerCase() === 'lead story'",
            timeout=10_000,
        )
        page.close()


@pytest.mark.slow
def test_an_editor_moves_a_story_on_the_page_and_it_sticks(demo_dir: Path) -> None:
    config = _publication(demo_dir)
    loaded = load_config(config)
    with running(create_app(config, now=lambda: NOW)) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/")
        story = page.locator("aside p", has_text="Brent crude climbs")
        form = story.locator("xpath=following-sibling::form[1]")
        form.locator("select").select_option("business-politics")
        form.locator("button").click()
        page.wait_for_url(f"{base}/")
        overrides = (loaded.overrides_dir / f"{NOW.date().isoformat()}.yaml").read_text()
        assert "business-politics" in overrides
        moved = page.locator("aside h2", has_text="Business & Politics").locator(
            "xpath=following-sibling::p[contains(., 'Brent crude climbs')]"
        )
        assert moved.count() >= 1
        page.close()
    store = Store.open(loaded.database_url)
    try:
        labels = store.stories.labels()
    finally:
        store.close()
    assert [(lab.sector, "Brent" in lab.title) for lab in labels] == [("business-politics", True)]


def test_a_move_without_the_pages_token_is_refused(demo_dir: Path) -> None:
    config = _publication(demo_dir)
    with running(create_app(config, now=lambda: NOW)) as base:
        answer = httpx.post(f"{base}/move", data={"story": "x", "sector": "oil-gas", "token": "n"})
        assert answer.status_code == 403
    assert not (load_config(config).overrides_dir).exists()
