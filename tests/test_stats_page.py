"""The editor's statistics page on the preview server: the chart of the last editions and the
most-clicked stories, looked at in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from newsletter import flows
from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import EventKind
from newsletter.readers.subscriptions import add_subscriber
from newsletter.records import ProviderEvent
from newsletter.store import Store
from newsletter.web.preview import create_app
from tests.browser import chromium
from tests.conftest import DEMO, NOW, write_config
from tests.webserver import running

FEEDS = [{"name": p.stem, "url": str(p)} for p in sorted((DEMO / "feeds").glob("*.xml"))]


def clock_at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def two_editions(tmp_path: Path) -> tuple[Path, Store, list[str]]:
    """Two days' editions to five readers, with what SendGrid would have reported."""
    path = write_config(tmp_path, {"feeds": FEEDS})
    config = load_config(path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    first = load_config(write_config(tmp_path / "first", {"feeds": FEEDS[::2]}))
    readers = [
        add_subscriber(store, f"r{i}@example.com", known_sectors=config.sector_slugs, now=NOW)[0]
        for i in range(5)
    ]
    titles = []
    for day, feeds_config in ((NOW, first), (NOW + timedelta(days=1), config)):
        flows.collect_all(feeds_config, store, now=day)
        flows.send_edition(config, store, make_mailer(config), now=clock_at(day))
        ref = store.editions.edition_ref(day.date())
        stored = store.editions.edition(day.date())
        assert ref is not None and stored is not None
        top = stored.edition.sections[0].stories[0]
        titles.append(top.title)
        events = []
        for n, reader in enumerate(readers):
            base = {"at": day, "edition_id": ref.id, "subscriber_id": reader.id}
            events.append(ProviderEvent(f"d{ref.id}-{n}", EventKind.DELIVERED, **base))  # type: ignore[arg-type]
            if n < 3:
                events.append(ProviderEvent(f"o{ref.id}-{n}", EventKind.OPEN, **base))  # type: ignore[arg-type]
            if n < 2 + ref.id:
                events.append(
                    ProviderEvent(f"c{ref.id}-{n}", EventKind.CLICK, url=top.url, **base)  # type: ignore[arg-type]
                )
        store.events.record_events(events, now=day)
    return path, store, titles


@pytest.mark.slow
def test_the_chart_of_the_last_editions_shows_in_chromium(tmp_path: Path) -> None:
    path, store, titles = two_editions(tmp_path)
    app = create_app(path, now=lambda: NOW + timedelta(days=1))
    with running(app) as base:
        page_text = httpx.get(f"{base}/stats").text
        assert "r0@example.com" not in page_text  # no reader is ever named
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{base}/stats")
            chart = page.locator("svg#chart")
            assert chart.is_visible()
            box = chart.bounding_box()
            assert box is not None and box["width"] >= 700 and box["height"] >= 250
            assert page.locator("svg#chart polyline").count() == 5  # one line per count
            picture = chart.screenshot()
            assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 5000
            (tmp_path / "chart.png").write_bytes(picture)  # kept for a look when it fails
            legend = page.locator(".legend").inner_text()
            for label in ("Delivered", "Opens", "Clicks", "Bounces", "Complaints"):
                assert label in legend
            assert "Apple Mail Privacy Protection" in page.locator(".caveat").inner_text()
            rows = page.locator("#numbers tr").all_inner_texts()
            assert rows[1].split() == [
                str((NOW + timedelta(days=1)).date()),
                "5",
                "5",
                "0",
                "0",
                "0",
                "3",
                "4",
            ]
            assert rows[2].split() == [str(NOW.date()), "5", "5", "0", "0", "0", "3", "3"]
            # the newest edition's most-clicked story, then the other day's on asking
            stories = page.locator("#stories").inner_text()
            assert titles[1] in stories
            page.click(f"text={NOW.date()}")
            assert titles[0] in page.locator("#stories").inner_text()
    store.close()


def test_before_any_edition_the_page_says_so_and_what_comes_next(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"feeds": [], "schedule": {"send_at": "06:30"}})
    with running(create_app(path, now=lambda: NOW)) as base:
        page = httpx.get(f"{base}/stats")
    assert page.status_code == 200
    assert "The last 0" not in page.text and "Nothing sent yet" in page.text
    assert "No edition has been sent yet" in page.text
    assert "06:30 (UTC)" in page.text and "newsletter send" in page.text
    assert "track_opens" in page.text  # opens and clicks need the provider's tracking
    assert '<svg id="chart"' not in page.text and 'href="/"' in page.text


def test_one_edition_is_the_first_and_two_are_the_last_two(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"feeds": FEEDS})
    config = load_config(path)
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    first = load_config(write_config(tmp_path / "first", {"feeds": FEEDS[::2]}))
    add_subscriber(store, "r@example.com", known_sectors=config.sector_slugs, now=NOW)
    headings = []
    with running(create_app(path, now=lambda: NOW)) as base:
        for day, feeds in ((NOW, first), (NOW + timedelta(days=1), config)):
            flows.collect_all(feeds, store, now=day)
            flows.send_edition(config, store, make_mailer(config), now=clock_at(day))
            found = re.search(r"<h2>(.*?)</h2>", httpx.get(f"{base}/stats").text)
            assert found is not None
            headings.append(found.group(1))
    store.close()
    assert headings == ["The first edition", "The last 2 editions"]
