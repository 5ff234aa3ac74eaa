"""The pages a reader meets, walked in Chromium on a real site (two editions really sent, the
app served on 127.0.0.1): for the tests that look at each page as it comes (fit, onward links,
contrast, accessibility)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page

from newsletter.config import Config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import Subscriber
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.test_archive import DAYS, LOGO, publish
from tests.webserver import running, signed_up

# the public pages, the same for every visitor
PUBLIC = {
    "archive": "/archive",
    "edition": f"/archive/{DAYS[1].date()}",
    "sector": "/sectors/oil-gas",
    "missing": "/archive/2001-01-01",
}


class Clock:
    """The app's clock, moved by the test (never the real one)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    base: str
    config: Config
    store: Store
    clock: Clock


@contextmanager
def published_site(folder: Path) -> Iterator[Site]:
    """Two editions sent to three readers, and the app serving them; sign-ups unlimited, and
    the CSRF cookie not marked Secure (served over plain HTTP, so httpx sends it too)."""
    web = {"logo": LOGO, "base_url": "http://news.example.org"}
    config, store, _ = publish(folder, {"signup": {"per_ip": "1000/minute"}, "publication": web})
    clock = Clock(DAYS[1])
    app = create_app(config, store, make_mailer(config), now=clock)
    try:
        with running(app) as base:
            yield Site(base, config, store, clock)
    finally:
        store.close()


def reader(site: Site, email: str) -> Subscriber:
    found = site.store.readers.subscriber_by_email(email)
    assert found is not None, email
    return found


def through(page: Page, selector: str) -> None:
    """Click what posts a form or follows a link, and wait until the page it leads to has
    loaded (a click only waits for the navigation to start: a busy machine showed the old
    page's links, or none)."""
    with page.expect_navigation():
        page.click(selector)


def reader_walk(page: Page, site: Site, email: str) -> Iterator[str]:
    """A reader's whole life on the site, in the browser: sign up (once with a mistake),
    confirm, change preferences, unsubscribe and come back. Yields each page's name when it is
    shown, for the caller to look at."""
    page.goto(f"{site.base}/")
    yield "sign-up"
    page.fill("#email", email)
    page.fill("#name", "Ana <Reader>")
    through(page, "button[type=submit]")
    yield "sign-up-mistake"
    page.fill("#name", "Ana Reader")
    page.check("input[value=oil-gas]")
    through(page, "button[type=submit]")
    yield "check-inbox"
    signed_up(site.store)
    token = reader(site, email).token
    page.goto(f"{site.base}/confirm/{token}")
    yield "confirm"
    through(page, "button[type=submit]")
    yield "subscribed"
    page.goto(f"{site.base}/preferences/{token}")
    yield "preferences"
    page.check("input[value=mining-metals]")
    through(page, "text=Save my preferences")
    yield "preferences-saved"
    page.goto(f"{site.base}/unsubscribe/{token}")
    yield "unsubscribe"
    through(page, "button[type=submit]")
    yield "left"  # the page after unsubscribing
    through(page, "text=Subscribe again")
    yield "subscribed-again"


def expired_walk(page: Page, site: Site, email: str) -> Iterator[str]:
    """A confirmation link opened after it expired, and the new one asked for."""
    page.goto(f"{site.base}/subscribe")
    page.fill("#email", email)
    through(page, "button[type=submit]")
    signed_up(site.store)
    token = reader(site, email).token
    before = site.clock.now
    site.clock.now = before + timedelta(days=site.config.file.signup.confirm_link_days + 1)
    try:
        page.goto(f"{site.base}/confirm/{token}")
        yield "expired"
        through(page, "button[type=submit]")
        yield "renewed"
    finally:
        site.clock.now = before
