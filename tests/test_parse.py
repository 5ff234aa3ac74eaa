from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.errors import FeedError
from newsletter.ingest.parse import parse_feed
from newsletter.models import FeedSource
from tests.conftest import NOW

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
    assert info.value.feed == FEED.url  # the context, as a field


def test_empty_but_valid_feed_is_not_an_error() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    assert parse_feed(body, FEED, headers={}, now=NOW) == ([], [])


def test_relative_links_resolve_against_the_feed_address() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Relative</title><link>/news/1</link></item></channel></rss>"
    )
    headers = {"content-location": "https://news.example.com/feed.xml"}
    stories, _ = parse_feed(body, FEED, headers=headers, now=NOW)
    assert [s.url for s in stories] == ["https://news.example.com/news/1"]


def test_bozo_feed_with_readable_entries_is_used_with_a_warning() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Broken &nbsp; entity</title><link>https://x.example.com/1</link></item>"
        b"<item><title>Second</title><link>https://x.example.com/2</link></item>"
        b"</channel>"  # the closing </rss> is missing
    )
    stories, warnings = parse_feed(body, FEED, headers={}, now=NOW)
    assert [s.url for s in stories] == ["https://x.example.com/1", "https://x.example.com/2"]
    assert any("not well-formed" in w for w in warnings)


def test_a_feed_cut_off_before_any_entry_could_be_read_is_an_error_not_an_empty_feed() -> None:
    """A truncated download: the first item's headline, and no link or end. "ok, 0 new" hid it
    (the entry, with no link, was skipped, and the feed looked empty)."""
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>Lithium miner cuts'
    with pytest.raises(FeedError) as info:
        parse_feed(body, FEED, headers={}, now=NOW)
    assert "not well-formed" in info.value.message and "no entry" in info.value.message
    assert info.value.hint and FEED.url in info.value.hint


def _items(*items: tuple[str, str, str]) -> bytes:
    item = "<item>{}<title>{}</title><link>https://x.example.com/{}</link></item>"
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        + "".join(item.format(f"<guid>{g}</guid>" if g else "", t, n) for g, t, n in items)
        + "</channel></rss>"
    ).encode()


def test_one_guid_on_one_link_is_one_story_and_on_other_links_other_stories() -> None:
    """A CMS that puts the site's address in every GUID, or a feed that links every item to
    its home page: each different story is kept, with a warning (all but the first were
    dropped, silently). The same link and GUID twice, an updated headline, is one story."""
    site = "https://x.example.com/"
    body = _items((site, "First", "1"), (site, "Second", "2"), (site, "Third", "3"))
    stories, warnings = parse_feed(body, FEED, headers={}, now=NOW)
    assert [s.title for s in stories] == ["First", "Second", "Third"]
    assert len({s.id for s in stories}) == 3
    assert any("3 entries share a GUID or link" in w for w in warnings)
    again, _ = parse_feed(body, FEED, headers={}, now=NOW)
    assert [s.id for s in again] == [s.id for s in stories]  # stable from fetch to fetch
    home = _items(("", "Alpha", "home"), ("", "Beta", "home"))
    assert [s.title for s in parse_feed(home, FEED, headers={}, now=NOW)[0]] == ["Alpha", "Beta"]
    updated = _items(("g1", "Old headline", "1"), ("g1", "New headline", "1"))
    assert [s.title for s in parse_feed(updated, FEED, headers={}, now=NOW)[0]] == ["Old headline"]


def test_bidirectional_controls_never_reach_a_story() -> None:
    feed = FeedSource(
        name="Test \u202eWire\u202c", url="https://wire.example.com/feed", location="x"
    )
    rss = RSS.replace("No date on this one", "Shares \u202erise\u202c as \u2066oil\u2069 falls")
    rss = rss.replace("Plain words.", "Words \u200fthat\u200e \u061cread\u202d backwards")
    stories, _ = parse_feed(rss.encode(), feed, headers={}, now=NOW)
    second = stories[1]
    assert second.title == "Shares rise as oil falls"
    assert second.summary == "Words that read backwards"
    assert {s.source for s in stories} == {"Test Wire"}


OLD_ITEMS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Archive Wire</title><link>https://wire.example.com/</link>
<description>x</description>
<item><title>Smelter plan revived</title><link>https://wire.example.com/2011/05/12/smelter</link>
  <description>An old story listed again with no date.</description></item>
<item><title>Pipeline approved</title><link>https://wire.example.com/news/story-2017-03-01.html</link>
  <pubDate>Tue, 24 Nov 2026 10:00:00 +0000</pubDate>
  <description>A story from years ago, re-listed under today's date.</description></item>
<item><title>Gallery of the year</title><link>https://wire.example.com/photo/2023/06/gallery</link>
  <description>A month named in the link, no day.</description></item>
<item><title>Yesterday's plant news</title><link>https://wire.example.com/2026/11/24/plant</link>
  <pubDate>Wed, 25 Nov 2026 01:00:00 +0000</pubDate>
  <description>Dated a day after its link: kept as the feed says.</description></item>
<item><title>Model 2030 battery</title><link>https://wire.example.com/cars/model-2030-battery</link>
  <description>A number that is no date.</description></item>
</channel></rss>
"""


def test_a_link_that_dates_a_story_long_before_the_feed_says_is_believed() -> None:
    """An old article re-listed (undated, or under today's date) is as old as its link says,
    so the edition's freshness window leaves it out."""
    stories, _ = parse_feed(OLD_ITEMS.encode(), FEED, headers={}, now=NOW)
    when = {s.title: s.published for s in stories}
    assert when["Smelter plan revived"] == datetime(2011, 5, 13, tzinfo=UTC)
    assert when["Pipeline approved"] == datetime(2017, 3, 2, tzinfo=UTC)
    assert when["Gallery of the year"] < datetime(2023, 7, 3, tzinfo=UTC)
    assert when["Yesterday's plant news"] == datetime(2026, 11, 25, 1, tzinfo=UTC)
    assert when["Model 2030 battery"] == NOW  # first seen now


def test_an_html_page_that_names_its_feed_says_which_address_to_use() -> None:
    """A site's home page given instead of its feed: the page's own rel="alternate" link is
    the address to put in the config, resolved against the page."""
    page = (
        b'<!doctype html><html><head><title>Wire</title><link rel="alternate" '
        b'type="application/rss+xml" title="All news" href="/rss/all.xml"></head><body>x</body>'
    )
    with pytest.raises(FeedError) as info:
        parse_feed(page, FEED, headers={}, now=NOW)
    said = info.value.message
    assert said.startswith("received an HTML page, not a feed")
    assert "the page names its feed: https://wire.example.com/rss/all.xml" in said
