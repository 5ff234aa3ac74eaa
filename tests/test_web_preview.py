"""`preview --serve`: the live page follows template and config edits and shows errors."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from newsletter import flows
from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.flows.scaffold import init_publication
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from newsletter.web.preview import create_app
from tests.browser import chromium
from tests.conftest import NOW, write_config
from tests.test_archive_browser import ARTIFACTS
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
        # the email opens with the brief (its heading "Today's brief", escaped in the HTML)
        assert first.status_code == 200 and "Today&#39;s brief</h2>" in first.text
        version = httpx.get(f"{base}/version").json()["version"]

        template.write_text(
            template.read_text(encoding="utf-8").replace("Today's brief", "The day in brief"),
            encoding="utf-8",
        )
        # answered when the watcher sees the edit (a long poll, as the page's script does)
        after = httpx.get(f"{base}/version", params={"after": version}, timeout=30)
        assert after.json()["version"] != version
        second = httpx.get(f"{base}/digest.html")
        assert "The day in brief</h2>" in second.text and "Today&#39;s brief" not in second.text

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
        assert text.status_code == 200 and "== Today's brief ==" in text.text


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
        assert phone.locator("h2").first.inner_text().lower() == "today's brief"
        # the third is the dark variant, whatever the editor's own setting (light here)
        dark = page.frame_locator("iframe").nth(2)
        background = dark.locator(".bd").first.evaluate(
            "(e) => getComputedStyle(e).backgroundColor"
        )
        assert background == "rgb(15, 23, 32)", background
        assert page.locator("a[href='/digest.txt']").count() == 1
        template.write_text(
            template.read_text(encoding="utf-8").replace("Today's brief", "Lead stories"),
            encoding="utf-8",
        )
        page.wait_for_function(
            "() => (document.querySelectorAll('iframe')[1]?.contentDocument"
            "?.querySelector('h2')?.innerText || '').toLowerCase() === 'lead stories'",
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
        page.wait_for_url(f"{base}/?moved=*")
        overrides = (loaded.overrides_dir / f"{NOW.date().isoformat()}.yaml").read_text()
        assert "business-politics" in overrides
        moved = page.locator("aside h3", has_text="Business & Politics").locator(
            "xpath=following-sibling::ul[1]/li/p[contains(., 'Brent crude climbs')]"
        )
        assert moved.count() >= 1
        # the page says what the move did: which story, which sector, where it is kept
        said = page.locator(".note.done").inner_text()
        assert said.startswith("Moved “Brent crude climbs") and "to Business & Politics." in said
        assert f"{NOW.date().isoformat()}.yaml" in said
        page.close()
    store = Store.open(loaded.database_url)
    try:
        labels = store.stories.labels()
    finally:
        store.close()
    assert [(lab.sector, "Brent" in lab.title) for lab in labels] == [("business-politics", True)]


@pytest.mark.slow
def test_the_page_fits_1024_1280_and_1440_with_nothing_cut_off(demo_dir: Path) -> None:
    config = _publication(demo_dir)
    with running(create_app(config, now=lambda: NOW)) as base, chromium() as browser:
        for width in (1024, 1280, 1440):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{base}/")
            page.screenshot(path=str(ARTIFACTS / f"preview-{width}.png"))
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{width}: {scroll} px wide, a horizontal scroll"
            panel = page.locator("aside.panel").bounding_box()
            assert panel is not None and panel["width"] >= 260, (width, panel)
            for i in range(3):  # each frame whole, at its own width, on the screen
                frame = page.locator("iframe").nth(i)
                box = frame.bounding_box()
                wanted = int(frame.get_attribute("width") or 0)
                assert box is not None and box["width"] == wanted + 2, (width, i, box)
                assert box["x"] >= panel["x"] + panel["width"] and box["x"] + box["width"] <= width
            button = page.locator("aside.panel button").first.bounding_box()
            title = page.locator("aside.panel li p").first.bounding_box()
            assert button is not None and title is not None
            assert button["x"] + button["width"] <= panel["x"] + panel["width"]
            assert title["height"] < 80, f"{width}: a story's title wraps a word a line"
            page.close()


def _send_today(config_path: Path, *, at: datetime = NOW) -> str:
    """Today's edition sent to one reader; its top story's title."""
    config = load_config(config_path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    try:
        add_subscriber(store, "ed@example.com", known_sectors=config.sector_slugs, now=at)
        report = flows.send_edition(config, store, make_mailer(config), now=lambda: at)
        assert report.sent == 1
        stored = store.editions.edition(at.date())
        assert stored is not None
        return stored.edition.sections[0].stories[0].title
    finally:
        store.close()


def test_once_sent_the_preview_shows_the_sent_edition_and_takes_no_moves(demo_dir: Path) -> None:
    config = _publication(demo_dir)
    loaded = load_config(config)
    day_file = loaded.overrides_dir / f"{NOW.date().isoformat()}.yaml"
    later = NOW + timedelta(hours=5)
    with running(create_app(config, now=lambda: later)) as base:
        before = httpx.get(f"{base}/").text
        token = re.search(r'name="token" value="([^"]+)"', before)
        story = re.search(r'name="story" value="([^"]+)"', before)
        assert token is not None and story is not None  # movable until it is sent
        first = _send_today(config)
        # an edit after the send: a fresh build would show it, the sent edition cannot
        loaded.overrides_dir.mkdir(parents=True, exist_ok=True)
        day_file.write_text("note: A note written after the send\n", encoding="utf-8")
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "could not be rendered" not in page.text
        assert "Sent: this is the edition of Wednesday, 25 November 2026" in page.text
        assert 'action="/move"' not in page.text and html.escape(first) in page.text
        digest = httpx.get(f"{base}/digest.html")
        assert digest.status_code == 200 and html.escape(first) in digest.text
        assert "A note written after the send" not in digest.text
        text = httpx.get(f"{base}/digest.txt").text
        assert first in text and "A note written after the send" not in text
        # a move from the page as it was before the send is refused, and writes nothing
        move = {"token": token.group(1), "story": story.group(1), "sector": "oil-gas"}
        stale = httpx.post(f"{base}/move", data=move)
        assert stale.status_code == 400 and "can no longer change" in stale.text
    assert day_file.read_text(encoding="utf-8") == "note: A note written after the send\n"


def test_a_day_without_an_edition_is_said_plainly_not_as_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"feeds": []})
    with running(create_app(config, now=lambda: NOW)) as base:
        page = httpx.get(f"{base}/")
        digest = httpx.get(f"{base}/digest.html")
        text = httpx.get(f"{base}/digest.txt")
    assert text.status_code == 200 and text.text.startswith("No edition for Wednesday")
    assert page.status_code == 200 and "No edition today: no story" in page.text
    assert 'class="note error"' not in page.text
    assert digest.status_code == 200 and "No edition for Wednesday, 25 November 2026" in digest.text
    assert "could not be rendered" not in digest.text


def test_a_move_without_the_pages_token_is_refused(demo_dir: Path) -> None:
    config = _publication(demo_dir)
    with running(create_app(config, now=lambda: NOW)) as base:
        answer = httpx.post(f"{base}/move", data={"story": "x", "sector": "oil-gas", "token": "n"})
        assert answer.status_code == 403
    assert not (load_config(config).overrides_dir).exists()
