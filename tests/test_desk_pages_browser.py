"""The desk driven end to end in Chromium, as an editor would, with no script of ours on the
pages: sign in, move and pin a story and see the email change, approve the edition, read a
sent edition's numbers, find a reader and erase them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import FrameLocator, Page
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from newsletter import flows
from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import EventKind, SubscriberStatus
from newsletter.readers.subscriptions import add_subscriber
from newsletter.records import ProviderEvent
from tests.axe import axe_script, serious_violations
from tests.browser import chromium
from tests.conftest import NOW, write_config
from tests.desk import EDITOR, PASSWORD, DeskSite, desk_site
from tests.test_archive_browser import ARTIFACTS
from tests.test_desk_pages import FEEDS, SETTINGS, YESTERDAY
from tests.webserver import running

pytestmark = pytest.mark.slow

# whether the email's section of a sector (or "": the brief) holds a story: between its heading
# and the next one
IN_SECTION = """(body, [slug, title, first]) => {
  const heads = [...body.querySelectorAll("h2")];
  const head = slug ? body.querySelector("h2#" + slug) : heads[0];
  const next = heads[heads.indexOf(head) + 1] || null;
  const links = [...body.querySelectorAll("a")].filter(a =>
    head.compareDocumentPosition(a) & Node.DOCUMENT_POSITION_FOLLOWING &&
    (!next || next.compareDocumentPosition(a) & Node.DOCUMENT_POSITION_PRECEDING) &&
    a.textContent.trim().length > 20);
  return first ? links.length > 0 && links[0].textContent.trim() === title
               : links.some(a => a.textContent.trim() === title);
}"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    """Yesterday's edition sent to three readers (two of them clicked), today's collected,
    and the send waiting for an approval."""
    schedule = {"send_at": "07:00", "require_approval": {"deadline": "08:00"}}
    with desk_site(tmp_path / "desk", {**SETTINGS, "schedule": schedule}) as site:
        readers = [
            add_subscriber(site.store, f"{n}@example.com", known_sectors=(), now=YESTERDAY)[0]
            for n in ("ana", "ben", "cy")
        ]
        first = load_config(write_config(tmp_path / "first", {**SETTINGS, "feeds": FEEDS[::2]}))
        flows.collect_all(first, site.store, now=YESTERDAY)
        mailer = make_mailer(site.config)
        flows.send_edition(site.config, site.store, mailer, now=lambda: YESTERDAY)
        ref = site.store.editions.edition_ref(YESTERDAY.date())
        stored = site.store.editions.edition(YESTERDAY.date())
        assert ref is not None and stored is not None
        url = stored.edition.sections[0].stories[0].url
        site.store.events.record_events(
            [
                ProviderEvent(
                    f"{k}{r.id}", k, YESTERDAY, edition_id=ref.id, subscriber_id=r.id, url=u
                )
                for r in readers
                for k, u in ((EventKind.DELIVERED, ""), (EventKind.CLICK, url))
                if k is EventKind.DELIVERED or r.email != "cy@example.com"
            ],
            now=YESTERDAY,
        )
        flows.collect_all(site.config, site.store, now=NOW)
        yield site


def _story_in_email(email: FrameLocator, slug: str, title: str, *, first: bool = False) -> bool:
    found = email.locator("body").evaluate(IN_SECTION, [slug, title, first])
    assert isinstance(found, bool)
    return found


def _sign_in(page: Page, site: DeskSite) -> None:
    page.goto(site.base + "/desk/today")
    assert "/desk/sign-in" in page.url
    page.fill("#email", EDITOR)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/desk/today")


def _move_and_pin(page: Page) -> None:
    first = page.locator("h3[id^='sector-']:not(#sector-brief)").first.get_attribute("id") or ""
    slug = first.removeprefix("sector-")  # the first sector the edition has today
    story = page.locator("article.story").last
    title = story.locator("h4").inner_text().strip()
    email = page.frame_locator("iframe.email")
    assert not _story_in_email(email, slug, title)
    story.locator("select[name=value]").select_option(slug)
    story.locator("button:has-text('Move')").click()
    assert "Saved" in page.locator("p.notice").inner_text()
    email = page.frame_locator("iframe.email")
    assert _story_in_email(email, slug, title)  # the email changed: the story is in its sector
    moved = page.locator(f"#sector-{slug} ~ article.story", has_text=title).first
    moved.locator("button:has-text('Pin to the brief')").click()
    email = page.frame_locator("iframe.email")
    assert _story_in_email(email, "", title, first=True)  # pinned: it leads the brief
    assert "pinned" in page.locator("article.story", has_text=title).first.inner_text()


def test_an_editor_runs_the_day_from_the_desk(site: DeskSite) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        ARTIFACTS.mkdir(parents=True, exist_ok=True)  # screenshots for a person to look at
        _sign_in(page, site)
        assert "Today's brief" in page.frame_locator("iframe.email").locator("body").inner_text()
        _move_and_pin(page)
        page.click("button:has-text('Approve this edition')")
        assert f"approved by {EDITOR}" in page.locator("#approval").inner_text()
        page.screenshot(path=str(ARTIFACTS / "desk-today.png"), full_page=True)

        page.click("nav.desk a:has-text('Sent editions')")
        assert page.locator("#chart").is_visible()
        page.click(f"a[href='/desk/editions/{YESTERDAY.date()}']")
        page.screenshot(path=str(ARTIFACTS / "desk-edition.png"), full_page=True)
        numbers = page.locator("#numbers").inner_text()
        assert "Delivered\t3" in numbers and "Clicks\t2" in numbers
        assert page.locator("#stories tbody tr").count() == 1

        page.click("nav.desk a:has-text('Readers')")
        page.fill("#q", "ben@")
        page.click("button:has-text('Find')")
        page.click("a:has-text('ben@example.com')")
        page.screenshot(path=str(ARTIFACTS / "desk-reader.png"), full_page=True)
        assert page.locator("#status").inner_text() == SubscriberStatus.CONFIRMED
        page.click("a:has-text('Erase this person')")
        page.click("button:has-text('Erase ben@example.com')")
        assert "is erased" in page.locator("main").inner_text()
        page.click("a:has-text('Back to the readers')")
        page.fill("#q", "ben@")
        page.click("button:has-text('Find')")
        assert "No reader matches" in (page.locator("#found").text_content() or "")
    assert site.store.readers.subscriber_by_email("ben@example.com") is None


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (375, "dark")])
def test_the_working_pages_have_no_serious_accessibility_violation(
    site: DeskSite, width: int, scheme: Literal["light", "dark"]
) -> None:
    axe_script()  # skipped (or failed under .ci/run) before any work without it
    reader = site.store.readers.subscriber_by_email("ana@example.com")
    assert reader is not None
    pages = {
        "today": "/desk/today",
        "editions": "/desk/editions",
        "edition": f"/desk/editions/{YESTERDAY.date()}",
        "feeds": "/desk/feeds",
        "readers": "/desk/readers?q=a",
        "reader": f"/desk/readers/{reader.id}",
        "erase": f"/desk/readers/{reader.id}/erase",
    }
    found: dict[str, list[str]] = {}
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, color_scheme=scheme, bypass_csp=True
        )
        page = context.new_page()
        _sign_in(page, site)
        for name, path in pages.items():
            page.goto(site.base + path)
            found[name] = serious_violations(page)
        story = page.goto(site.base + "/desk/today") and page.locator("article.story").first
        assert story
        story.locator("button:has-text('Drop')").click()  # the page with "Dropped today"
        found["today-dropped"] = serious_violations(page)
    assert len(found) == len(pages) + 1
    assert {name: v for name, v in found.items() if v} == {}


def test_opening_the_desk_from_another_site_keeps_the_forms_of_its_open_tabs(
    site: DeskSite,
) -> None:
    """A link to the desk on another site (webmail, chat) opens it in a second tab: the first
    tab's forms still work (the form token's cookie goes with such a link, so the second tab
    is given the same token, not a new one that refuses the first tab's forms)."""
    port = site.base.rsplit(":", 1)[1]
    other = f"<!doctype html><title>Mail</title><a id=go href='{site.base}/desk/today'>desk</a>"
    mail = Starlette(routes=[Route("/", lambda request: HTMLResponse(other))])
    with running(mail) as elsewhere, chromium() as browser:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        first = context.new_page()
        _sign_in(first, site)
        second = context.new_page()  # localhost is another site than 127.0.0.1
        second.goto(elsewhere.replace("127.0.0.1", "localhost"))
        second.click("#go")
        second.wait_for_url(f"**:{port}/desk/today")
        note = first.locator("form#note")
        note.locator("textarea").fill("Markets close early on Friday.")
        note.locator("button").click()
        assert "Saved" in first.locator("p.notice").inner_text()
