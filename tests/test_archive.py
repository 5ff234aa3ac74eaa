"""The public pages of `newsletter serve`: the archive, an edition's page, sector pages and
the feeds, for editions really sent to readers; the sponsor slot in the email."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
import yaml

from newsletter import flows
from newsletter.config import Config, load_config
from newsletter.config.editorial import SponsorConfig
from newsletter.config.loading import sponsor_of
from newsletter.delivery.mailers import make_mailer
from newsletter.models import Subscriber
from newsletter.readers.subscriptions import add_subscriber
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.conftest import DEMO, NOW, write_config
from tests.webserver import running

FEEDS = [{"name": p.stem, "url": str(p)} for p in sorted((DEMO / "feeds").glob("*.xml"))]
SPONSOR = {
    "title": "Halvard Analytics",
    "text": "Quarterly outlooks on grid storage and critical minerals, with a weekly data call.",
    "cta_label": "See the outlooks",
    "cta_url": "https://halvard.example.org/outlooks?ref=tit",
    "after": "oil-gas",
    "utm": {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "ed-{date}"},
}
LOGO = {"url": "https://cdn.example.org/tit-logo.png", "width": 180, "alt": "Top Insights Today"}
NAMES = ("Zephyrine Quillfeather", "Octavian Brambleworth", "Marisol Vantongeren")
DAYS = (NOW, NOW + timedelta(days=1))


def clock_at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


@dataclass
class Published:
    base: str
    config: Config
    store: Store
    readers: list[Subscriber]


def publish(
    tmp_path: Path, extra: dict[str, object] | None = None
) -> tuple[Config, Store, list[Subscriber]]:
    """Two days' editions, really sent (outbox) to three named readers; the second day's
    overrides file drops the sponsor."""
    settings: dict[str, object] = {
        "feeds": FEEDS,
        "sponsor": SPONSOR,
        "publication": {"logo": LOGO, "base_url": "https://news.example.org"},
        "web": {"archive_page_size": 1},
        **(extra or {}),
    }
    config = load_config(write_config(tmp_path, settings))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    readers = [
        add_subscriber(
            store,
            f"{name.split()[0].lower()}@example.com",
            name=name,
            known_sectors=config.sector_slugs,
            now=NOW,
        )[0]
        for name in NAMES
    ]
    overrides = config.overrides_dir
    overrides.mkdir(parents=True, exist_ok=True)
    (overrides / f"{DAYS[1].date()}.yaml").write_text(yaml.safe_dump({"sponsor": False}))
    first = load_config(write_config(tmp_path / "first", {**settings, "feeds": FEEDS[::2]}))
    for day, feeds in ((DAYS[0], first), (DAYS[1], config)):
        flows.collect_all(feeds, store, now=day)
        report = flows.send_edition(config, store, make_mailer(config), now=clock_at(day))
        assert report.sent == 3
    return config, store, readers


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    config, store, readers = publish(tmp_path_factory.mktemp("published"))
    app = create_app(config, store, make_mailer(config), now=clock_at(DAYS[1]))
    with running(app) as base:
        yield Published(base, config, store, readers)


def public_paths(config: Config) -> list[str]:
    sectors = [f"/sectors/{s}" for s in config.sector_slugs]
    return [
        "/",
        "/subscribe",
        "/archive",
        "/archive?page=2",
        *(f"/archive/{d.date()}" for d in DAYS),
        *sectors,
        *(f"{s}/feed.xml" for s in sectors),
        "/feed.xml",
        "/robots.txt",
        "/archive/2001-01-01",
        "/sectors/no-such-sector",
    ]


@pytest.mark.slow
def test_no_public_page_shows_a_readers_token_address_or_name(published: Published) -> None:
    secrets = []
    for reader in published.readers:
        secrets += [reader.token, reader.email, *reader.name.split()]
    for path in public_paths(published.config):
        answer = httpx.get(published.base + path)
        assert answer.status_code in (200, 404), path
        for secret in secrets:
            assert secret not in answer.text, f"{path} shows {secret!r}"


def test_the_archive_lists_the_sent_editions_and_each_has_its_page(published: Published) -> None:
    archive = httpx.get(f"{published.base}/archive")
    assert archive.status_code == 200
    newest, oldest = (f"/archive/{d.date()}" for d in reversed(DAYS))
    # one edition a page here (web.archive_page_size): the newest first, the older on page 2
    assert newest in archive.text and oldest not in archive.text
    assert 'href="/archive?page=2"' in archive.text and "Page 1 of 2" in archive.text
    second = httpx.get(f"{published.base}/archive?page=2")
    assert oldest in second.text and newest not in second.text
    assert httpx.get(f"{published.base}/archive?page=3").status_code == 404
    page = httpx.get(published.base + oldest)
    stored = published.store.editions.edition(DAYS[0].date())
    assert stored is not None
    for section in stored.edition.sections:
        assert section.sector.name.replace("&", "&amp;") in page.text
    assert '<link rel="canonical" href="https://news.example.org' + oldest + '">' in page.text
    assert 'property="og:title"' in page.text and 'name="twitter:card"' in page.text
    assert 'rel="alternate" type="application/atom+xml"' in page.text
    assert page.text.count("Sponsored</p>") == 1 and "Halvard Analytics" in page.text
    # the second day's overrides file dropped the sponsor: that day only
    assert "Halvard Analytics" not in httpx.get(published.base + newest).text
    assert 'action="/embed/subscribe"' in page.text and "privacy and cookie policy" in page.text
    assert httpx.get(f"{published.base}/archive/2001-01-01").status_code == 404
    name = published.config.publication.name
    assert f"<title>{DAYS[0]:%d %b %Y} · {name}</title>" in page.text  # the name once
    assert f"<title>Archive, page 2 of 2 · {name}</title>" in second.text


def test_a_missing_page_asks_not_to_be_indexed_and_names_no_canonical_address(
    published: Published,
) -> None:
    for path in ("/archive/2001-01-01", "/archive?page=9", "/sectors/nope", "/no/such/page"):
        answer = httpx.get(published.base + path)
        assert answer.status_code == 404, path
        assert '<meta name="robots" content="noindex">' in answer.text, path
        assert 'rel="canonical"' not in answer.text and 'property="og:url"' not in answer.text


def test_the_feeds_parse_cleanly_with_the_right_entries(published: Published) -> None:
    feed = feedparser.parse(httpx.get(f"{published.base}/feed.xml").content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    links = [entry.link for entry in feed.entries]
    assert links == [f"https://news.example.org/archive/{d.date()}" for d in reversed(DAYS)]
    top = published.store.editions.edition(DAYS[1].date())
    assert top is not None
    slug = "oil-gas"
    page = httpx.get(f"{published.base}/sectors/{slug}")
    sector = feedparser.parse(httpx.get(f"{published.base}/sectors/{slug}/feed.xml").content)
    assert sector.bozo == 0, sector.get("bozo_exception")
    assert sector.entries, "the sector feed is empty"
    for entry in sector.entries:
        assert entry.link in page.text  # the same stories as the sector page, linking to sources
        assert entry.tags[0].term == slug
    assert sector.feed.title == f"{published.config.publication.name}: Oil & Gas"


def test_the_sponsor_is_in_each_email_once_in_its_place_and_dropped_for_one_day(
    published: Published,
) -> None:
    outbox = published.config.outbox_dir
    for day, expected in ((DAYS[0], 1), (DAYS[1], 0)):
        (path, *_) = sorted((outbox / day.date().isoformat()).glob("*.eml"))
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert html.count(">Sponsored<") == expected and text.count("== Sponsored ==") == expected
        assert f"/archive/{day.date()}" in html and f"/archive/{day.date()}" in text
        assert LOGO["url"] in html
        if expected:
            # after the Oil & Gas section, before the next one
            oil, after = html.index("Oil &amp; Gas</h2>"), html.index(">Sponsored<")
            nxt = html.find("</h2>", oil + 20)
            assert oil < after < nxt
            assert f"utm_campaign=ed-{day.date()}" in html and "ref=tit&amp;utm_source" in html
            assert text.index("== Oil & Gas ==") < text.index("== Sponsored ==")
        for line in text.splitlines():  # wrapped at 78; only a long link stands alone
            assert len(line) <= 78 or " " not in line.strip(), line


def test_the_sponsors_own_utm_values_are_replaced_not_repeated() -> None:
    """A sponsor's link that already carries utm_source gets the configured one instead: two
    values would leave the sponsor's analytics to pick one."""
    settings = SponsorConfig(
        title="Northstar",
        text="Grid storage, sized.",
        cta_label="See how",
        cta_url="https://northstar.example.com/storage?ref=a&utm_source=old#frag",
        utm={"utm_source": "newsletter", "utm_campaign": "{date}"},
    )
    url = sponsor_of(settings, NOW.date()).url
    assert url == (
        "https://northstar.example.com/storage?ref=a&utm_source=newsletter"
        f"&utm_campaign={NOW.date()}#frag"
    )


def test_an_edition_of_one_more_headline_is_listed_by_it_in_the_archive_and_feed(
    tmp_path: Path,
) -> None:
    """A day whose only story has no teaser: it fills a section's "more" headlines and leads
    nothing; the archive and the feed still name it and count it, under its own sector."""
    from newsletter.edition.digest import build_edition
    from newsletter.models import EditionStatus, Sector, SectorFit, Story

    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url)
    bare = Story(
        id="s1",
        title="Regulator Opens Review Of Grain Port Fees",
        url="https://wire.example.com/s1",
        summary="",
        source="Wire",
        published=NOW - timedelta(hours=2),
        feed_url="feed:wire",
        fits=(SectorFit("sanctions-regulation", 2.0),),
    )
    sectors = [Sector(s.slug, s.name) for s in config.sectors]
    edition = build_edition([bare], sectors, publication="P", edition_date=NOW.date(), now=NOW)
    store.editions.save_edition(edition, status=EditionStatus.SENT, now=NOW)
    app = create_app(config, store, make_mailer(config), now=clock_at(NOW))
    with running(app) as base:
        archive = httpx.get(f"{base}/archive").text
        feed = feedparser.parse(httpx.get(f"{base}/feed.xml").content)
    store.close()
    assert "<p>Regulator Opens Review Of Grain Port Fees</p>" in archive
    assert "1 story · Sanctions &amp; Regulation</p>" in archive
    (entry,) = feed.entries
    assert entry.title.endswith(": Regulator Opens Review Of Grain Port Fees")
    assert entry.summary == "1 story in Sanctions & Regulation."


def test_a_sector_feed_names_each_entry_by_a_valid_address() -> None:
    """An entry's id is an IRI: a story link with a quote or a space in it is escaped."""
    from newsletter.edition import syndication
    from newsletter.models import Sector, SectorFit, Story

    site = syndication.Site("Top", "https://news.example.org", "en")
    odd = 'https://wire.example.com/a?b=1&c="2" d'
    story = Story(
        id="s1",
        title="Ore Prices Steady",
        url=odd,
        summary="",
        source="Wire",
        published=NOW,
        feed_url="feed:wire",
        fits=(SectorFit("mining-metals", 2.0),),
    )
    body = syndication.sector_feed(site, Sector("mining-metals", "Mining & Metals"), [story])
    (entry,) = feedparser.parse(body).entries
    assert entry.id == "https://wire.example.com/a?b=1&c=%222%22%20d"
