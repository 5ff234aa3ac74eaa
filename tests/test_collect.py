from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.collect import (
    canonical_url,
    fetch_all,
    parse_feed,
    teaser,
    to_plain_text,
)
from newsletter.errors import FeedError
from newsletter.models import FeedSource
from tests.conftest import NOW
from tests.feedserver import FeedServer

FEED = FeedSource(name="Test Wire", url="https://wire.example.com/feed", location="x")

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Test Wire</title><link>https://wire.example.com/</link>
<description>x</description>
<item>
  <title>Refinery restarts after &lt;b&gt;storm&lt;/b&gt; &amp;amp; outage</title>
  <link>https://wire.example.com/a?id=7&amp;utm_source=rss&amp;fbclid=zz#top</link>
  <guid isPermaLink="false">a-7</guid>
  <pubDate>Tue, 24 Nov 2026 10:00:00 +0100</pubDate>
  <description><![CDATA[<p>The plant is back.</p><script>alert(1)</script>
    <img src="https://t.example.net/p.gif" width="1" height="1"><p>Output&nbsp;resumes &amp;
    rises.</p> <a href="javascript:alert(2)">click</a>]]></description>
</item>
<item>
  <title>No date on this one</title>
  <link>https://wire.example.com/b</link>
  <description>Plain words.</description>
</item>
<item>
  <title>From the future</title>
  <link>https://wire.example.com/c</link>
  <pubDate>Fri, 01 Jan 2100 00:00:00 +0000</pubDate>
</item>
<item>
  <title>Bad link</title>
  <link>javascript:alert(3)</link>
</item>
</channel></rss>
"""


def test_parse_feed_cleans_stories() -> None:
    stories, warnings = parse_feed(RSS.encode(), FEED, headers={}, now=NOW)
    assert [s.title for s in stories] == [
        "Refinery restarts after storm & outage",
        "No date on this one",
        "From the future",
    ]
    first = stories[0]
    assert first.url == "https://wire.example.com/a?id=7"
    assert first.summary == "The plant is back. Output resumes & rises. click"
    assert first.published == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert first.source == "Test Wire" and first.feed_url == FEED.url
    assert stories[1].published == NOW  # missing date: first seen
    assert stories[2].published == NOW  # future date: clamped
    assert any("without an http(s) link" in w for w in warnings)
    for story in stories:
        assert "<" not in story.summary and "javascript" not in story.summary


def test_story_ids_are_stable_and_per_feed() -> None:
    once, _ = parse_feed(RSS.encode(), FEED, headers={}, now=NOW)
    again, _ = parse_feed(RSS.encode(), FEED, headers={}, now=NOW + timedelta(hours=1))
    assert [s.id for s in once] == [s.id for s in again]
    assert len({s.id for s in once}) == len(once)
    other = FeedSource(name="Other", url="https://other.example.com/feed", location="x")
    theirs, _ = parse_feed(RSS.encode(), other, headers={}, now=NOW)
    assert not {s.id for s in once} & {s.id for s in theirs}


def test_charset_from_headers_is_used() -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Caf\u00e9 cr\u00e8me</title><link>https://x.example.com/1</link></item>"
        "</channel></rss>"
    ).encode("latin-1")
    stories, _ = parse_feed(
        body, FEED, headers={"Content-Type": "application/rss+xml; charset=ISO-8859-1"}, now=NOW
    )
    assert stories[0].title == "Caf\u00e9 cr\u00e8me"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "empty response"),
        (b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>", "HTML page"),
        (
            b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<url><loc>https://x.example.com/</loc></url></urlset>",
            "sitemap",
        ),
        (b'{"items": []}', "JSON"),
    ],
)
def test_not_a_feed_says_what_was_received(body: bytes, expected: str) -> None:
    with pytest.raises(FeedError) as info:
        parse_feed(body, FEED, headers={}, now=NOW)
    assert expected in info.value.message
    assert info.value.hint is not None and FEED.url in info.value.hint


def test_empty_but_valid_feed_is_not_an_error() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    assert parse_feed(body, FEED, headers={}, now=NOW) == ([], [])


def test_plain_text_handles_double_encoding_and_entities() -> None:
    assert to_plain_text("&lt;p&gt;Hello &amp;amp; bye&lt;/p&gt;") == "Hello & bye"
    assert to_plain_text("<p>One</p><p>Two</p>") == "One Two"
    assert to_plain_text("a &lt; b") == "a < b"
    assert to_plain_text("<style>p{color:red}</style>Text") == "Text"


def test_teaser_cuts_at_sentence_then_word() -> None:
    first = "This first sentence runs long enough to pass half of the limit."
    assert teaser(first + " " + "word " * 80, 100) == first
    early = "Too early. " + "word " * 80  # a sentence end before half the limit is not used
    assert teaser(early, 100).endswith("word…")
    words = "alpha beta gamma delta " * 30
    cut = teaser(words, 100)
    assert cut.endswith("…") and len(cut) <= 101
    assert cut[:-1].split()[-1] in {"alpha", "beta", "gamma", "delta"}
    assert teaser("short", 100) == "short"


def test_canonical_url_drops_tracking_only() -> None:
    url = "HTTPS://News.Example.com/x?b=2&utm_medium=rss&a=1&gclid=9#frag"
    assert canonical_url(url) == "https://news.example.com/x?b=2&a=1"


def _source(server: FeedServer, path: str, name: str) -> FeedSource:
    url = server.url(path)
    return FeedSource(name=name, url=url, location=url)


def test_fetch_all_reports_failures_by_name_and_collects_the_rest(
    feed_server: FeedServer,
) -> None:
    feed_server.add("/good.xml", RSS)
    feed_server.add("/slow.xml", RSS, delay=3.0)
    feed_server.add(
        "/page.html", "<html><body>hi</body></html>", headers={"Content-Type": "text/html"}
    )
    sources = [
        _source(feed_server, "/good.xml", "Good"),
        _source(feed_server, "/missing.xml", "Missing"),
        _source(feed_server, "/slow.xml", "Slow"),
        _source(feed_server, "/page.html", "Page"),
    ]
    started = time.monotonic()
    results = asyncio.run(
        fetch_all(sources, timeout=0.5, max_concurrency=4, contact_url="https://pub.example.com/c")
    )
    assert time.monotonic() - started < 2.5  # the slow server cost its timeout, not its delay
    by_name = {r.feed.name: r for r in results}
    assert [r.feed.name for r in results] == ["Good", "Missing", "Slow", "Page"]
    assert by_name["Good"].error is None and by_name["Good"].content == RSS.encode()
    assert by_name["Good"].headers["content-type"] == "application/rss+xml"
    assert by_name["Missing"].error == "HTTP 404 Not Found"
    assert by_name["Slow"].error == "timed out after 0.5 s"
    page = by_name["Page"]
    assert page.content is not None
    with pytest.raises(FeedError, match="HTML page"):
        parse_feed(page.content, page.feed, headers=page.headers, now=NOW)
    agents = {headers.get("User-Agent") for _, headers in feed_server.requests}
    assert agents == {"newsletter/0.1.0 (+https://pub.example.com/c)"}


def test_fetch_reads_local_files_and_reports_missing_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "feed.xml"
    path.write_text(RSS, encoding="utf-8")
    sources = [
        FeedSource(name="Here", url="feed.xml", location=str(path)),
        FeedSource(name="Gone", url="gone.xml", location=str(tmp_path / "gone.xml")),
    ]
    here, gone = asyncio.run(fetch_all(sources, timeout=1, max_concurrency=2, contact_url="x"))
    assert here.content == RSS.encode() and here.error is None
    assert gone.error is not None and "file not found" in gone.error


def test_body_larger_than_the_cap_is_refused(feed_server: FeedServer) -> None:
    feed_server.add("/big.xml", b"<rss>" + b" " * 200_000 + b"</rss>")
    (result,) = asyncio.run(
        fetch_all(
            [_source(feed_server, "/big.xml", "Big")],
            timeout=2,
            max_concurrency=1,
            contact_url="x",
            max_bytes=50_000,
        )
    )
    assert result.content is None
    assert result.error == "response larger than 50,000 bytes; gave up"
