"""A reader's time zone, delivery hour, frequency and watchlist on the web (issue 29): chosen
on sign-up (zone and hour, applied when the reader confirms) and on the preferences page
(all of them), checked with a clear message naming what to correct, kept in the consent
history; the zone filled from the browser by the one script the pages load."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import Frequency
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.conftest import NOW, write_config
from tests.test_web import Site, clock, confirmations
from tests.webserver import running, signed_up


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config = load_config(
        write_config(
            tmp_path,
            {"feeds": [], "schedule": {"send_at": "07:00", "delivery_hours": [6, 7, 8, 9]}},
        )
    )
    store = Store.open(config.database_url)
    app = create_app(config, store, make_mailer(config), now=clock)
    with running(app) as base:
        yield Site(base, config, store)


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base) as c:
        yield c


def _csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def _token(site: Site) -> str:
    reader, _ = add_subscriber(
        site.store, "ana@example.com", known_sectors=site.config.sector_slugs, now=NOW
    )
    return reader.token


def test_the_preferences_page_keeps_zone_hour_frequency_and_watchlist(
    site: Site, client: httpx.Client
) -> None:
    token = _token(site)
    path = f"/preferences/{token}"
    page = client.get(path)
    assert 'name="timezone"' in page.text and 'list="zones"' in page.text
    assert '<option value="Asia/Kolkata">' in page.text  # the IANA names to pick from
    assert '<script src="/zone.js" defer></script>' in page.text
    fields = {
        "csrf": _csrf(client, path),
        "name": "Ana",
        "timezone": "Asia/Kolkata",
        "hour": "8",
        "frequency": Frequency.WEEKLY.value,
        "weekday": "4",
        "watchlist": "Tesla, CATL\nlithium; tesla",
    }
    saved = client.post(path, data=fields)
    assert saved.status_code == 200, saved.text
    assert "weekly on Friday at 08:00 Asia/Kolkata" in saved.text
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None
    assert (reader.timezone, reader.hour, reader.frequency, reader.weekday) == (
        "Asia/Kolkata",
        8,
        Frequency.WEEKLY,
        4,
    )
    assert reader.watchlist == ("Tesla", "CATL", "lithium")
    again = client.get(path).text
    assert 'value="Asia/Kolkata"' in again and "Tesla\nCATL\nlithium</textarea>" in again
    assert '<option value="8" selected>' in again and f'value="{Frequency.WEEKLY}" checked' in again
    last = site.store.readers.events_of(reader.id)[-1]
    assert last.kind == "preferences" and "Asia/Kolkata" in str(last.details)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("timezone", "asia/kolkata", "did you mean &#39;Asia/Kolkata&#39;"),
        ("timezone", "Mars/Olympus", "unknown time zone"),
        ("hour", "3", "03:00 is not a delivery hour; choose one of 06:00, 07:00, 08:00, 09:00"),
        ("frequency", "hourly", "choose daily or weekly"),
        ("weekday", "someday", "is not a weekday"),
        ("watchlist", ",".join(f"t{n}" for n in range(11)), "at most 10"),
        ("timezone", "x" * 65, "longer than 64"),
    ],
)
def test_a_bad_choice_is_refused_with_what_to_correct_and_changes_nothing(
    site: Site, client: httpx.Client, field: str, value: str, says: str
) -> None:
    token = _token(site)
    path = f"/preferences/{token}"
    response = client.post(path, data={"csrf": _csrf(client, path), field: value})
    assert response.status_code == 400 and says in response.text, response.text
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None and reader.timezone == "" and reader.watchlist == ()


def test_the_zone_and_hour_chosen_at_sign_up_apply_when_the_reader_confirms(
    site: Site, client: httpx.Client
) -> None:
    fields = {
        "csrf": _csrf(client, "/subscribe"),
        "email": "kim@example.com",
        "timezone": "America/New_York",
        "hour": "6",
    }
    assert client.post("/subscribe", data=fields).status_code == 200
    signed_up(site.store)
    (mail,) = confirmations(site, 1)
    link = re.search(r"http://localhost:8000(/confirm/[\w-]+)", mail.read_text())
    assert link
    page = client.get(link.group(1))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    assert client.post(link.group(1), data={"csrf": csrf.group(1)}).status_code == 200
    reader = site.store.readers.subscriber_by_email("kim@example.com")
    assert reader is not None and (reader.timezone, reader.hour) == ("America/New_York", 6)


def test_a_sign_up_with_a_bad_zone_shows_the_form_again_with_the_message(
    site: Site, client: httpx.Client
) -> None:
    fields = {
        "csrf": _csrf(client, "/subscribe"),
        "email": "kim@example.com",
        "timezone": "Europe/Pariss",
    }
    response = client.post("/subscribe", data=fields)
    assert response.status_code == 400 and "Europe/Paris" in response.text
    assert 'value="Europe/Pariss"' in response.text  # what was typed, to correct
    assert site.store.readers.subscriber_list() == []


def test_the_zone_script_is_the_only_script_and_the_policy_allows_only_it(
    client: httpx.Client,
) -> None:
    script = client.get("/zone.js")
    assert script.status_code == 200 and "resolvedOptions().timeZone" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    policy = client.get("/subscribe").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy


def test_chromium_fills_the_zone_from_the_browser_and_the_reader_can_change_it(
    site: Site,
) -> None:
    from tests.browser import chromium

    token = _token(site)
    with chromium() as browser:
        context = browser.new_context(timezone_id="Asia/Tokyo")
        page = context.new_page()
        page.goto(f"{site.base}/preferences/{token}")
        zone = page.locator("#timezone")
        zone.wait_for()
        page.wait_for_function("document.querySelector('#timezone').value !== ''")
        assert zone.input_value() == "Asia/Tokyo"  # pre-filled, editable
        zone.fill("Europe/Lisbon")
        page.select_option("#hour", "9")
        page.fill("#watchlist-terms", "Galp")
        page.click("text=Save my preferences")
        page.wait_for_selector("text=Preferences saved")
        assert "09:00 Europe/Lisbon" in page.content()
        context.close()
    reader = site.store.readers.subscriber_by_token(token)
    assert reader is not None and (reader.timezone, reader.hour) == ("Europe/Lisbon", 9)
    assert reader.watchlist == ("Galp",)


def test_import_and_export_carry_zone_hour_frequency_and_watchlist(tmp_path: Path) -> None:
    import io

    from newsletter.readers.export import export_csv
    from newsletter.readers.roster import import_csv

    config = load_config(
        write_config(tmp_path, {"feeds": [], "schedule": {"delivery_hours": [6, 7, 8]}})
    )
    store = Store.open(config.database_url)
    add_subscriber(
        store, "kept@example.com", known_sectors=config.sector_slugs, now=NOW, watchlist=["Shell"]
    )
    path = tmp_path / "readers.csv"
    path.write_text(
        "email,name,sectors,status,timezone,hour,frequency,weekday,watchlist\n"
        "ana@example.com,Ana,oil-gas,,Asia/Kolkata,6,weekly,fri,Tesla; =CATL\n"
        "bo@example.com,Bo,,,Mars/Base,7,,,\n"  # line 3: no such zone
        "cy@example.com,Cy,,,,9,,,\n"  # line 4: an hour not offered
        "kept@example.com,Kept,,\n",  # no further columns: the watchlist stays
        encoding="utf-8",
    )
    schedule = config.file.schedule
    report = import_csv(store, path, known_sectors=config.sector_slugs, now=NOW, schedule=schedule)
    assert report.added == 1 and report.updated == 1
    assert [n for n, _ in report.rejected] == [3, 4]
    assert "unknown time zone 'Mars/Base'" in report.rejected[0][1]
    assert "09:00 is not a delivery hour" in report.rejected[1][1]
    ana = store.readers.subscriber_by_email("ana@example.com")
    assert ana is not None
    assert (ana.timezone, ana.hour, ana.frequency, ana.weekday) == (
        "Asia/Kolkata",
        6,
        Frequency.WEEKLY,
        4,
    )
    assert ana.watchlist == ("Tesla", "=CATL")
    kept = store.readers.subscriber_by_email("kept@example.com")
    assert kept is not None and kept.watchlist == ("Shell",)
    out = io.StringIO()
    export_csv(store, out)
    lines = out.getvalue().splitlines()
    assert "ana@example.com,Ana,oil-gas,confirmed,Asia/Kolkata,6,weekly,fri,Tesla; =CATL" in lines
    # export then import gives the same readers back
    again = tmp_path / "again.csv"
    again.write_text(out.getvalue(), encoding="utf-8")
    second = import_csv(store, again, known_sectors=config.sector_slugs, now=NOW, schedule=schedule)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 2)
    store.close()
