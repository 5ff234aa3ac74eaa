"""A reader's private links land only where the template put them: a feed (title, link, teaser,
source name) or a config value that writes the markers' old fixed text gets nothing filled in,
through every mailer."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from newsletter import flows
from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.edition import personalize, render
from newsletter.edition.digest import layout
from newsletter.flows.build import build
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from tests.conftest import NOW, write_config
from tests.sendgrid_server import SendgridServer, delivered, sendgrid_server
from tests.smtp_server import Inbox, start_smtp

KEY = "SG.local-test-key"
BASE = "https://pub.example.com"
BAIT = "%%unsubscribe_url%% %%preferences_url%% %%unsubscribe_url.text%% %%greeting%%"
# one field of one story each: the title, the link, the teaser; the feed's name is the source
ITEMS = [
    ("OPEC+ extends crude output cut into spring " + BAIT, "opec-cut", "Oil ministers agreed."),
    (
        "Refinery fire on the Gulf Coast shuts 200,000 barrels a day of crude capacity",
        "refinery?u=%%unsubscribe_url%%&p=%%preferences_url%%&t=%%unsubscribe_url.text%%",
        "The refinery's operator said repairs would take weeks.",
    ),
    (
        "LNG tanker rates hit a record as winter gas demand builds",
        "lng-rates",
        "Charter rates for liquefied natural gas carriers doubled. Read on: " + BAIT,
    ),
]
READERS = ["ana@example.com", "ben@example.com", "cy@example.com"]


def hostile_feed(folder: Path) -> Path:
    items = "\n".join(
        f"""<item><title>{title}</title>
<link>https://leak.example.com/oil/{path.replace("&", "&amp;")}</link>
<guid>https://leak.example.com/guid/{n}</guid>
<pubDate>Tue, 24 Nov 2026 1{n}:00:00 +0000</pubDate>
<description>{teaser}</description></item>"""
        for n, (title, path, teaser) in enumerate(ITEMS)
    )
    path = folder / "leak.xml"
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written for this test: a feed that tries to get each reader's private links filled in. -->
<rss version="2.0"><channel><title>Leak Wire</title><link>https://leak.example.com/</link>
<description>Oil and gas.</description>
{items}
</channel></rss>""",
        encoding="utf-8",
    )
    return path


def make_config(tmp_path: Path, backend: str, **delivery_keys: object) -> Config:
    feed = {"name": "Leak Wire " + BAIT, "url": str(hostile_feed(tmp_path)), "sector": "oil-gas"}
    data: dict[str, object] = {
        "publication": {"base_url": BASE},
        "email": {"subject": "Oil today {{ edition_date }} %%unsubscribe_url%%"},
        "feeds": [feed],
        "delivery": {"backend": backend, "preflight": False, **delivery_keys},
    }
    return load_config(write_config(tmp_path, data))


def send_to_readers(config: Config) -> dict[str, str]:
    """Collect, add the readers, send; each reader's token."""
    store = Store.open(config.database_url)
    try:
        flows.collect_all(config, store, now=NOW)
        for address in READERS:
            add_subscriber(store, address, name="Ana", known_sectors=config.sector_slugs, now=NOW)
        mailer = make_mailer(config)
        try:
            report = flows.send_edition(config, store, mailer, now=lambda: NOW)
        finally:
            mailer.close()
        assert report.sent == len(READERS)
        return {r.email: r.token for r in store.readers.subscriber_list()}
    finally:
        store.close()


def check_copy(address: str, text: str, tokens: dict[str, str]) -> None:
    """The reader's token appears, and only right after the web app's own two paths; no
    other reader's token; the bait is still there as the feed wrote it."""
    token = tokens[address]
    places = [m.start() for m in re.finditer(re.escape(token), text)]
    assert places, f"{address}'s copy has no link of theirs at all"
    for at in places:  # each a whole link of the web app's, not inside another address
        before = text[max(0, at - 60) : at]
        own = f'(^|[\\s"<(]){re.escape(BASE)}/(unsubscribe|preferences)/$'
        assert re.search(own, before), before
    for other, theirs in tokens.items():
        assert other == address or theirs not in text
    assert "Leak Wire" in text and "leak.example.com/oil/refinery" in text
    assert "OPEC+ extends crude output cut" in text and "%%unsubscribe_url%%" in text


def outbox_copies(config: Config) -> Iterator[tuple[str, str]]:
    for path in sorted((config.outbox_dir / NOW.date().isoformat()).glob("*.eml")):
        yield from message_copies([path.read_bytes()])


def message_copies(raw: list[bytes]) -> Iterator[tuple[str, str]]:
    for data in raw:
        message = email.message_from_bytes(data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        parts = [str(message[h]) for h in ("Subject", "List-Unsubscribe")]
        for kind in ("plain", "html"):
            part = message.get_body((kind,))
            assert part is not None
            parts.append(part.get_content())
        yield str(message["To"]).rpartition("<")[2].rstrip(">"), "\n".join(parts)


def test_a_hostile_feed_gets_no_private_link_through_the_outbox(tmp_path: Path) -> None:
    config = make_config(tmp_path, "outbox")
    tokens = send_to_readers(config)
    copies = list(outbox_copies(config))
    assert sorted(a for a, _ in copies) == READERS
    for address, text in copies:
        check_copy(address, text, tokens)


def test_a_hostile_feed_gets_no_private_link_through_smtp(tmp_path: Path) -> None:
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    try:
        smtp = {"host": "127.0.0.1", "port": port, "backoff_seconds": 0.01}
        tokens = send_to_readers(make_config(tmp_path, "smtp", smtp=smtp))
        assert inbox.wait_for(len(READERS))
    finally:
        controller.stop()
    copies = list(message_copies([m.as_bytes() for m in inbox.messages]))
    assert sorted(a for a, _ in copies) == READERS
    for address, text in copies:
        check_copy(address, text, tokens)


def test_a_hostile_feed_gets_no_private_link_through_sendgrid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    server: SendgridServer
    with sendgrid_server(api_key=KEY) as server:
        config = make_config(tmp_path, "sendgrid", sendgrid={"api_host": server.url})
        tokens = send_to_readers(config)
    copies = [copy for body in server.accepted for copy in delivered(body)]
    assert sorted(c["to"] for c in copies) == READERS
    for copy in copies:
        text = "\n".join(v for k, v in copy.items() if k != "to")
        check_copy(copy["to"], text, tokens)


def test_a_variant_can_be_filled_only_at_its_own_markers(tmp_path: Path) -> None:
    """Two renders draw different secrets; the old fixed text and another render's markers
    are left as they are."""
    config = make_config(tmp_path, "outbox")
    store = Store.open(config.database_url)
    try:
        flows.collect_all(config, store, now=NOW)
        built = build(config, store, now=NOW)
    finally:
        store.close()
    assert built.edition is not None
    env = render.make_environment()
    sections = layout(built.edition, ())
    settings = render.settings_for(config)
    first = render.render_email(env, built.edition, sections, settings=settings)
    second = render.render_email(env, built.edition, sections, settings=settings)
    assert first.markers and second.markers and first.markers != second.markers
    forged = first.html.replace("OPEC+", personalize.placeholder("unsubscribe_url", "0" * 24))
    values = {"unsubscribe_url": "U", "preferences_url": "P", "greeting": "G"}
    filled = personalize.Personalizer(replace(first, html=forged)).fill(values)
    assert personalize.placeholder("unsubscribe_url", "0" * 24) in filled.html
    assert "%%unsubscribe_url%%" in filled.html and filled.markers == ""
    subs = personalize.substitutions(first, values)
    assert all(first.markers in key for key in subs)
