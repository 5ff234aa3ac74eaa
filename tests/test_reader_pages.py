"""The sign-up page and the readers' own pages: the consent sentence with its links, the
sectors, the way to the archive and the latest edition, a next step on every page (no dead
ends); then the same pages and the public ones in Chromium at phone and desktop widths, light
and dark: no horizontal scroll, the menu folded on a phone, text contrast at WCAG AA.
Screenshots are kept in ``test-artifacts/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from playwright.sync_api import Page

from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import SubscriberStatus
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.browser import chromium
from tests.conftest import NOW, write_config
from tests.test_archive import DAYS
from tests.test_archive_browser import check
from tests.walk import PUBLIC, Site, expired_walk, published_site, reader, reader_walk
from tests.webserver import running, signed_up

LATEST = f"/archive/{DAYS[1].date()}"
SCHEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")
WALK = (  # the pages of a reader's life (tests.walk), in order
    *("sign-up", "sign-up-mistake", "check-inbox", "confirm", "subscribed", "preferences"),
    *("preferences-saved", "unsubscribe", "left", "subscribed-again"),
    *("expired", "renewed"),
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with published_site(tmp_path_factory.mktemp("readers")) as published:
        yield published


def links_under_the_message(html: str) -> list[str]:
    """The next steps a message page offers (its "What next" list)."""
    found = re.search(r'<section class="next".*?</section>', html, re.S)
    return re.findall(r'href="([^"]+)"', found.group(0)) if found else []


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def test_the_sign_up_page_has_the_consent_links_the_sectors_and_the_latest_edition(
    site: Site,
) -> None:
    publication = site.config.publication
    for path in ("/", "/subscribe"):
        page = httpx.get(site.base + path)
        assert page.status_code == 200
        consent = re.search(r'<p class="consent">(.*?)</p>', page.text, re.S)
        assert consent is not None
        assert f'href="{publication.privacy_url}"' in consent.group(1)
        assert f'href="{publication.terms_url}"' in consent.group(1)
        assert "I want to receive" in consent.group(1)
        boxes = re.findall(r'<input type="checkbox" name="sectors" value="([^"]+)"', page.text)
        assert boxes == list(site.config.sector_slugs) and len(boxes) == 9
        assert f'href="{LATEST}"' in page.text and 'href="/archive"' in page.text
        assert 'name="robots" content="noindex' in page.text


def test_before_the_first_edition_the_sign_up_page_says_so(tmp_path: Path) -> None:
    # a publication with no terms page of its own: the consent names the privacy policy only
    settings: dict[str, object] = {"feeds": [], "publication": {"terms_url": ""}}
    config = load_config(write_config(tmp_path, settings))
    store = Store.open(config.database_url)
    with running(create_app(config, store, make_mailer(config), now=lambda: NOW)) as base:
        page = httpx.get(f"{base}/subscribe").text
    store.close()
    assert "The first edition has not been sent yet" in page
    assert 'href="/archive/' not in page and 'href="/archive"' in page
    consent = re.search(r'<p class="consent">(.*?)</p>', page, re.S)
    assert consent is not None and "privacy and cookie policy</a>." in consent.group(1)
    assert "terms" not in consent.group(1) and ">Terms</a>" not in page


def test_every_page_of_a_readers_life_offers_a_next_step(site: Site) -> None:
    address = "next.steps@example.com"
    prefs = "/preferences/{}"
    with httpx.Client(base_url=site.base) as client:
        sent = client.post(
            "/subscribe", data={"csrf": csrf_of(client.get("/").text), "email": address}
        )
        assert "Check your inbox" in sent.text
        assert links_under_the_message(sent.text) == [LATEST, "/archive"]
        signed_up(site.store)
        token = reader(site, address).token
        confirm = client.get(f"/confirm/{token}")
        done = client.post(f"/confirm/{token}", data={"csrf": csrf_of(confirm.text)})
        assert "You are subscribed" in done.text
        assert links_under_the_message(done.text) == [LATEST, "/archive", prefs.format(token)]
        again = client.get(f"/confirm/{token}")  # the link opened a second time
        assert links_under_the_message(again.text) == [LATEST, "/archive", prefs.format(token)]
        form = client.get(prefs.format(token))
        saved = client.post(
            prefs.format(token), data={"csrf": csrf_of(form.text), "sectors": "oil-gas"}
        )
        assert "Preferences saved" in saved.text and "Oil &amp; Gas" in saved.text
        assert links_under_the_message(saved.text) == [LATEST, "/archive", prefs.format(token)]
        leaving = client.get(f"/unsubscribe/{token}")
        assert links_under_the_message(leaving.text) == [prefs.format(token)]
        gone = client.post(f"/unsubscribe/{token}")
        assert "You are unsubscribed" in gone.text
        assert f'action="/resubscribe/{token}"' in gone.text  # the way back, one press
        assert links_under_the_message(gone.text) == ["/archive", "/subscribe"]
        # opening the unsubscribe link again offers the same, and changes nothing (a GET)
        reopened = client.get(f"/unsubscribe/{token}")
        assert f'action="/resubscribe/{token}"' in reopened.text
        assert reader(site, address).status == SubscriberStatus.UNSUBSCRIBED
        back = client.post(f"/resubscribe/{token}", data={"csrf": csrf_of(reopened.text)})
        assert "You are subscribed again" in back.text
        assert links_under_the_message(back.text) == [LATEST, "/archive", prefs.format(token)]
        stale = client.post(prefs.format(token), data={"csrf": "forged"})
        assert stale.status_code == 403
        assert links_under_the_message(stale.text) == [prefs.format(token), "/archive"]
    assert reader(site, address).status == SubscriberStatus.CONFIRMED


@pytest.mark.slow
def test_every_reader_and_public_page_fits_a_phone_and_a_desktop_in_both_schemes(
    site: Site,
) -> None:
    looked = []
    with chromium() as browser:
        for width in (375, 1280):
            for scheme in SCHEMES:
                page = browser.new_page(
                    viewport={"width": width, "height": 800},
                    color_scheme=scheme,
                )
                for name, path in PUBLIC.items():
                    page.goto(site.base + path)
                    _looks_right(page, f"{name}-{width}-{scheme}", width)
                    looked.append(name)
                for name in _whole_walk(page, site, f"{width}-{scheme}"):  # page by page
                    _looks_right(page, f"reader-{name}-{width}-{scheme}", width)
                    looked.append(name)
                page.close()
    assert looked == 4 * [*PUBLIC, *WALK]


def _whole_walk(page: Page, site: Site, tag: str) -> Iterator[str]:
    """A reader's life, then an expired link: each page's name while it is shown."""
    yield from reader_walk(page, site, f"walk-{tag}@example.com")
    yield from expired_walk(page, site, f"late-{tag}@example.com")


def _looks_right(page: Page, name: str, width: int) -> None:
    """No horizontal scroll, text contrast at AA (``check``), and the menu: folded into a
    disclosure on a phone, so the page's heading comes within the first screen."""
    check(page, name)
    sectors = page.locator("nav.site ul.sectors")
    fold = page.locator("nav.site details")
    heading = page.locator("main h1").bounding_box()
    assert heading is not None and heading["y"] < 260, f"{name}: the heading is pushed down"
    if width < 600:
        assert not sectors.is_visible() and fold.is_visible(), name
    else:
        assert sectors.is_visible() and not fold.is_visible(), name


ONWARD = {  # the next steps each message page offers, by the walk's page names
    "check-inbox": ["/archive"],
    "subscribed": ["/archive", "/preferences/"],
    "preferences-saved": ["/archive", "/preferences/"],
    "left": ["/archive", "/subscribe"],
    "subscribed-again": ["/archive", "/preferences/"],
    "expired": ["/subscribe", "/archive"],
    "renewed": ["/archive"],
}


@pytest.mark.slow
def test_a_reader_is_never_left_at_a_dead_end_and_the_menu_opens_on_a_phone(site: Site) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(f"{site.base}{PUBLIC['archive']}")
        page.click("nav.site summary")  # the menu opens with no script
        sector = page.locator("nav.site details a", has_text="Oil & Gas")
        assert sector.is_visible()
        sector.click()
        assert page.locator("main h1").inner_text() == "Oil & Gas"
        seen: dict[str, list[str]] = {}
        for name in _whole_walk(page, site, "phone"):
            seen[name] = page.eval_on_selector_all(
                "main .next a", "links => links.map(a => a.getAttribute('href'))"
            )
            if name == "left":
                assert page.locator("main button", has_text="Subscribe again").is_visible()
            if name == "sign-up":  # the consent sentence's links, where the reader sees them
                consent = page.locator("main p.consent a")
                hrefs = [consent.nth(i).get_attribute("href") for i in range(consent.count())]
                publication = site.config.publication
                assert hrefs == [publication.privacy_url, publication.terms_url]
                assert consent.first.is_visible() and consent.last.is_visible()
        for name, wanted in ONWARD.items():
            for start in wanted:
                assert any(h.startswith(start) for h in seen[name]), (name, seen[name])
        for name in ("check-inbox", "subscribed", "preferences-saved", "subscribed-again"):
            assert LATEST in seen[name], (name, seen[name])
        assert page.locator("main h1").inner_text() == "Check your inbox"  # the renewal
        page.close()
    assert tuple(seen) == WALK
