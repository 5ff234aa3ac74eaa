"""A reader's name (issue 24, item 7): reduced to printable single-line text at every entrance
(the web's sign-up and preferences, ``subscribers add``, the CSV import), and cleaned again at
send time, so that a name an older version stored never fails a delivery."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import SubscriberStatus
from newsletter.models.readers import Slot
from newsletter.readers.subscriptions import add_subscriber, new_token
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.conftest import NOW, TEST_DATABASE, write_config
from tests.sendgrid_server import SendgridServer, delivered, sendgrid_server
from tests.smtp_server import Inbox, start_smtp
from tests.test_send import KEY, clock, collected, make_config
from tests.test_text import DIRTY_NAMES
from tests.webserver import running, signed_up

ENV = {"NEWSLETTER_NOW": NOW.isoformat()}
# what a command line can carry (no NUL in an argument)
TYPED = [(typed, kept) for typed, kept in DIRTY_NAMES if "\x00" not in typed]
# what one line of a CSV file can carry (a row is one line: a raw CR or LF ends it)
ONE_LINE = [(typed, kept) for typed, kept in DIRTY_NAMES if not {"\r", "\n"} & set(typed)]
# clean names a header must quote or encode whole: a comma, a comment's parentheses, quotes
SPECIAL = ["O'Brien, Ren\u00e9e", "M\u00fcller (CEO)", 'Ana "Bo" Ruiz', "Smith, John"]


def _names(store: Store, prefix: str) -> dict[str, str]:
    return {r.email: r.name for r in store.readers.subscriber_list() if r.email.startswith(prefix)}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Config, Store]]:
    config = load_config(write_config(tmp_path, {"feeds": [], "signup": {"per_ip": "100/minute"}}))
    store = Store.open(config.database_url)
    with running(create_app(config, store, make_mailer(config), now=clock)) as base:
        yield base, config, store
    store.close()


def test_names_are_cleaned_at_the_web_sign_up_and_on_the_preferences_page(
    web: tuple[str, Config, Store],
) -> None:
    base, config, store = web
    wanted = {f"web{i}@example.com": kept for i, (_, kept) in enumerate(DIRTY_NAMES)}
    with httpx.Client(base_url=base) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/subscribe").text)
        assert csrf is not None
        for i, (typed, _) in enumerate(DIRTY_NAMES):
            data = {"csrf": csrf.group(1), "email": f"web{i}@example.com", "name": typed}
            answer = client.post("/subscribe", data=data)
            assert answer.status_code == 200 and "Check your inbox" in answer.text
        signed_up(store)  # every sign-up carried out: its reader and its consent event
        assert _names(store, "web") == wanted
        for reader in store.readers.subscriber_list():  # the consent history keeps the cleaned name
            assert store.readers.events_of(reader.id)[0].details["name"] == wanted[reader.email]

        reader, _ = add_subscriber(
            store, "prefs@example.com", known_sectors=config.sector_slugs, now=NOW
        )
        for typed, kept in DIRTY_NAMES:
            page = client.get(f"/preferences/{reader.token}")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            data = {"csrf": csrf.group(1), "name": typed}
            saved = client.post(f"/preferences/{reader.token}", data=data)
            assert saved.status_code == 200 and "Preferences saved" in saved.text
            assert _names(store, "prefs") == {"prefs@example.com": kept}


def test_names_are_cleaned_by_subscribers_add_and_the_csv_import(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, {"feeds": []})
    for i, (typed, _) in enumerate(TYPED):  # the command, the name as its argument
        adding = ["subscribers", "add", f"cli{i}@example.com", "--name", typed]
        done = CliRunner().invoke(cli, ["--config", str(config_path), *adding], env=ENV)
        assert done.exit_code == 0, done.output
    rows = "".join(
        f'csv{i}@example.com,"{typed.replace(chr(34), chr(34) * 2)}",\n'
        for i, (typed, _) in enumerate(ONE_LINE)
    )
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text("email,name,sectors\n" + rows, encoding="utf-8", newline="")
    result = CliRunner().invoke(
        cli, ["--config", str(config_path), "subscribers", "import", str(csv_file)], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert f"{len(ONE_LINE)} added" in result.output and "0 rejected" in result.output
    store = Store.open(load_config(config_path).database_url)
    try:
        assert _names(store, "cli") == {f"cli{i}@example.com": k for i, (_, k) in enumerate(TYPED)}
        assert _names(store, "csv") == {
            f"csv{i}@example.com": k for i, (_, k) in enumerate(ONE_LINE)
        }
    finally:
        store.close()


@pytest.fixture
def provider() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key=KEY) as server:
        yield server


@pytest.mark.parametrize("backend", ["outbox", "smtp", "sendgrid"])
def test_a_name_an_older_version_stored_never_fails_a_delivery(
    backend: str, tmp_path: Path, provider: SendgridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    try:
        settings: dict[str, object] = {
            "sendgrid": {"api_host": provider.url},
            "smtp": {"host": "127.0.0.1", "port": port, "backoff_seconds": 0.01},
        }
        config = make_config(tmp_path, backend, **settings)
        store = collected(config)
        wanted = {}
        names = [*DIRTY_NAMES, *((name, name) for name in SPECIAL)]
        for i, (typed, kept) in enumerate(names):  # stored as it was typed, unchecked
            address = f"old{i}@example.com"
            store.readers.upsert_subscriber(
                address,
                # PostgreSQL never held a NUL: it refuses one
                name=typed if not TEST_DATABASE else typed.replace("\x00", ""),
                sectors=[],
                status=SubscriberStatus.CONFIRMED,
                token=new_token(),
                now=NOW,
            )
            wanted[address] = kept
        mailer = make_mailer(config)
        report = flows.send_edition(config, store, mailer, now=clock)
        mailer.close()
        store.close()
        assert (report.sent, report.failed) == (len(names), 0)
        if backend == "sendgrid":
            people = [p for body in provider.accepted for p in body["personalizations"]]
            shown = {p["to"][0]["email"]: p["to"][0]["name"] for p in people}
            greetings = {
                copy["to"]: _greeting_text(copy["text/plain"])
                for body in provider.accepted
                for copy in delivered(body)
            }
        else:
            messages = inbox.messages if backend == "smtp" else _outbox(config)
            assert all(len(m["To"].addresses) == 1 for m in messages)  # one reader, one name
            shown = {
                m["To"].addresses[0].addr_spec: m["To"].addresses[0].display_name for m in messages
            }
            greetings = {m["To"].addresses[0].addr_spec: _greeting(m) for m in messages}
        assert shown == wanted
        # the first word of the name, without the comma of "O'Brien, Ren\u00e9e"
        first = {a: kept.split()[0].rstrip(",") for a, kept in wanted.items()}
        assert greetings == {a: f"Good morning, {name}." for a, name in first.items()}
    finally:
        controller.stop()


def _outbox(config: Config) -> list[EmailMessage]:
    out = []
    for path in sorted((config.outbox_dir / NOW.date().isoformat()).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        out.append(message)
    return out


def _greeting(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return _greeting_text(part.get_content())


def _greeting_text(text: str) -> str:
    found = re.search(r"Good morning[^\n]*\.", text)
    assert found is not None
    return found.group(0)


def test_the_greeting_says_the_readers_own_time_of_day(tmp_path: Path) -> None:
    """The edition goes at 06:00 UTC: morning in London, afternoon in Tokyo, evening in
    Honolulu (the day before), 03:00 in Sao Paulo. "Good morning" would be a lie for three of
    them: the greeting follows the reader's own clock."""
    config = make_config(tmp_path, "outbox")
    store = collected(config)
    zones = {
        "ann@example.com": ("Europe/London", "Good morning, Ann."),
        "tom@example.com": ("Asia/Tokyo", "Good afternoon, Tom."),
        "eve@example.com": ("Pacific/Honolulu", "Good evening, Eve."),
        "nia@example.com": ("America/Sao_Paulo", "Hello, Nia."),  # the middle of the night
    }
    for address, (zone, said) in zones.items():
        name = said.split(", ")[1].rstrip(".")
        slot = Slot(timezone=zone)
        add_subscriber(store, address, name=name, known_sectors=(), now=NOW, slot=slot)
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    store.close()
    assert report.sent == len(zones)
    found = {}
    for message in _outbox(config):
        part = message.get_body(("plain",))
        assert part is not None
        greeting = re.search(r"(Good \w+|Hello), \w+\.", part.get_content())
        assert greeting is not None
        found[message["To"].addresses[0].addr_spec] = greeting.group(0)
    assert found == {address: said for address, (_, said) in zones.items()}
