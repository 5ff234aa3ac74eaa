"""Teasers from article pages: served locally, including a page that hangs, a 50 MB page, a
page robots.txt disallows and a response that is not HTML."""

from __future__ import annotations

from pathlib import Path

from newsletter import flows
from newsletter.config import load_config
from newsletter.ingest.articles import extract_lead, needs_teaser
from newsletter.store import Store
from tests.conftest import NOW, write_config
from tests.feedserver import FeedServer

ARTICLE = """<!doctype html><html><head><title>Harbour cranes go electric</title></head>
<body><nav>Home | Ports | Energy</nav>
<article><h1>Harbour cranes go electric</h1>
<p>The port of Ostrava-on-Sea switched its last four diesel cranes to grid power on Monday,
cutting the terminal's fuel bill by a third, its operator said.</p>
<p>The cranes draw on a new substation fed by a nearby wind farm; a battery bank covers peaks.</p>
<p>Two more terminals plan the same change next year.</p></article>
<footer>Copyright Example Ports Weekly</footer></body></html>"""


def _feed(server: FeedServer, items: dict[str, str]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{server.url(path)}</link>"
        f"<guid>{path}</guid><description></description>"
        f"<pubDate>Wed, 25 Nov 2026 05:00:00 GMT</pubDate></item>"
        for path, title in items.items()
    )
    channel = f"<channel><title>T</title>{entries}</channel>"
    body = f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'
    return server.add("/feed.xml", body)


def test_a_thin_summary_asks_for_the_page() -> None:
    assert needs_teaser("Harbour cranes go electric", "", 80)
    assert needs_teaser("Harbour cranes go electric", "Harbour cranes go electric.", 80)
    assert not needs_teaser("Cranes", "The port switched its last four diesel cranes " * 3, 80)


def test_the_lead_is_the_first_paragraph_of_the_article() -> None:
    lead = extract_lead(ARTICLE, "Harbour cranes go electric")
    assert lead is not None and lead.startswith("The port of Ostrava-on-Sea switched")
    assert "Copyright" not in lead and "Home |" not in lead


def test_pages_give_teasers_within_the_limits_and_are_fetched_once(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", headers={})
    feed_server.add("/a/good", ARTICLE, headers={"Content-Type": "text/html; charset=utf-8"})
    feed_server.add("/a/hang", ARTICLE, headers={"Content-Type": "text/html"}, delay=3.0)
    feed_server.add(
        "/a/huge", "<html><body>", headers={"Content-Type": "text/html"}, stream=50 * 2**20
    )
    feed_server.add("/private/secret", ARTICLE, headers={"Content-Type": "text/html"})
    feed_server.add("/a/report.pdf", b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    titles = {
        "/a/good": "Harbour cranes go electric",
        "/a/hang": "A page that never answers",
        "/a/huge": "A page far too large",
        "/private/secret": "A page robots.txt keeps private",
        "/a/report.pdf": "A report that is a PDF",
    }
    url = _feed(feed_server, titles)
    path = write_config(
        tmp_path,
        {
            "feeds": [{"name": "Ports Weekly", "url": url}],
            "collect": {
                "teasers": {"enabled": True, "timeout_seconds": 0.5, "max_bytes": 2_000_000}
            },
        },
    )
    config = load_config(path)
    store = Store.open(config.database_url)
    try:
        flows.collect_all(config, store, now=NOW)
        by_title = {s.title: s for s in store.stories.stored()}
        assert by_title["Harbour cranes go electric"].summary.startswith("The port of Ostrava")
        errors = _errors(store)
        assert errors["A page that never answers"] == "timed out after 0.5 s"
        assert "larger than 2,000,000 bytes" in errors["A page far too large"]
        assert errors["A page robots.txt keeps private"].startswith("robots.txt disallows")
        assert errors["A report that is a PDF"] == "not an HTML page (application/pdf)"
        assert ("/private/secret",) not in {(p,) for p, _ in feed_server.requests}
        before = len(feed_server.requests)
        flows.collect_all(config, store, now=NOW)  # the feed again: no page again
        again = [p for p, _ in feed_server.requests[before:]]
        assert again == ["/feed.xml"]
    finally:
        store.close()


def _errors(store: Store) -> dict[str, str]:
    from sqlalchemy import select

    from newsletter.store.tables import stories

    query = select(stories.c.title, stories.c.page_error).where(stories.c.page_error.is_not(None))
    with store.engine.connect() as conn:
        return {title: error for title, error in conn.execute(query)}
