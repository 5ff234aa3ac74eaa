"""Teasers from article pages: served locally, including a page that hangs, a 50 MB page, a
page robots.txt disallows and a response that is not HTML."""

from __future__ import annotations

import threading
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
        # the collection stores the feed and returns: no article page is read on its path
        assert [p for p, _ in feed_server.requests] == ["/feed.xml"]
        assert flows.teasers_waiting(config, store, now=NOW) == 5
        assert flows.fetch_teasers(config, store, now=NOW) == 5
        assert flows.teasers_waiting(config, store, now=NOW) == 0
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
        assert flows.fetch_teasers(config, store, now=NOW) == 0
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


def test_a_host_that_does_not_resolve_costs_one_bounded_look_up_and_waits(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # three pages on a host whose name the resolver never answers for, two on a live one:
    # the dead host is looked up once, given up after resolve_seconds, and its pages are
    # neither fetched nor marked (a later run tries again); the live pages get their teasers
    feed_server.add("/a/one", ARTICLE, headers={"Content-Type": "text/html; charset=utf-8"})
    feed_server.add("/a/two", ARTICLE, headers={"Content-Type": "text/html; charset=utf-8"})
    dead = {f"http://dead-host.test/a/{n}": f"A story on a dead host, part {n}" for n in range(3)}
    live = {"/a/one": "Harbour cranes go electric", "/a/two": "Harbour cranes go electric too"}
    items = {**{feed_server.url(p): t for p, t in live.items()}, **dead}
    entries = "".join(
        f"<item><title>{title}</title><link>{url}</link><guid>{url}</guid>"
        f"<pubDate>Wed, 25 Nov 2026 05:00:00 GMT</pubDate></item>"
        for url, title in items.items()
    )
    url = feed_server.add(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"{entries}</channel></rss>",
    )
    path = write_config(
        tmp_path,
        {
            "feeds": [{"name": "Ports Weekly", "url": url}],
            "collect": {"teasers": {"enabled": True, "resolve_seconds": 0.3}},
        },
    )
    config = load_config(path)
    asked: list[str] = []
    release = threading.Event()

    def resolve(host: str, port: int) -> object:
        asked.append(host)
        if host == "dead-host.test":
            release.wait(30)  # a resolver that hangs (released when the test ends)
            raise OSError("no answer")
        return None

    store = Store.open(config.database_url)
    try:
        flows.collect_all(config, store, now=NOW)
        assert flows.fetch_teasers(config, store, now=NOW, resolve=resolve) == 2
        assert sorted(asked) == ["127.0.0.1", "dead-host.test"]  # once each, not per page
        assert {p for p, _ in feed_server.requests} == {"/feed.xml", "/robots.txt", *live}
        assert flows.teasers_waiting(config, store, now=NOW) == 3  # left for a later run
        by_title = {s.title: s for s in store.stories.stored()}
        assert by_title["Harbour cranes go electric"].summary.startswith("The port of Ostrava")
    finally:
        release.set()
        store.close()


def test_the_scheduler_reads_pages_after_a_collection_and_none_when_nothing_is_new(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    from newsletter.delivery.mailers import make_mailer
    from newsletter.schedule.runner import Runner

    for name in ("one", "two"):
        feed_server.add(f"/a/{name}", ARTICLE, headers={"Content-Type": "text/html"})
    url = _feed(feed_server, {"/a/one": "Harbour cranes go electric", "/a/two": "Cranes, again"})
    path = write_config(
        tmp_path,
        {
            "feeds": [{"name": "Ports Weekly", "url": url}],
            "collect": {"teasers": {"enabled": True, "max_per_run": 1}},
        },
    )
    config = load_config(path)
    runner = Runner(
        config,
        open_store=lambda: Store.open(config.database_url),
        make_mailer=lambda: make_mailer(config),
        clock=lambda: NOW,
    )
    runner.collect()  # new stories: one page read (max_per_run), after the feeds were stored
    pages = [p for p, _ in feed_server.requests if p.startswith("/a/")]
    assert len(pages) == 1
    before = len(feed_server.requests)
    runner.collect()  # nothing new in the feed: no article work, though a page still waits
    assert [p for p, _ in feed_server.requests[before:]] == ["/feed.xml"]
    store = Store.open(config.database_url)
    try:
        assert flows.teasers_waiting(config, store, now=NOW) == 1
    finally:
        store.close()


def test_the_collect_command_says_what_waits_and_reads_it_with_teasers(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    from click.testing import CliRunner

    from newsletter.cli import cli

    feed_server.add("/a/one", ARTICLE, headers={"Content-Type": "text/html"})
    url = _feed(feed_server, {"/a/one": "Harbour cranes go electric"})
    path = write_config(
        tmp_path,
        {
            "feeds": [{"name": "Ports Weekly", "url": url}],
            "collect": {"teasers": {"enabled": True}},
        },
    )
    env = {"NEWSLETTER_NOW": NOW.isoformat()}
    first = CliRunner().invoke(cli, ["--config", str(path), "collect"], env=env)
    assert first.exit_code == 0, first.output
    assert "1 story waits for a teaser" in first.output
    assert "`newsletter collect --teasers`" in first.output
    assert not [p for p, _ in feed_server.requests if p.startswith("/a/")]
    second = CliRunner().invoke(cli, ["--config", str(path), "collect", "--teasers"], env=env)
    assert second.exit_code == 0, second.output
    assert "Teasers: read 1 article page." in second.output
    assert "for a teaser" not in second.output
