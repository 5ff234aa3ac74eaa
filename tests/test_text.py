from __future__ import annotations

from newsletter.text import canonical_url, teaser, to_plain_text, web_url


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


def test_script_schemes_never_survive_as_text() -> None:
    link = '<a href="javascript:alert(1)">javascript:alert(1)</a> ok'
    assert to_plain_text(link) == "alert(1) ok"
    assert "data:" not in to_plain_text("see data:text/html;base64,PHNjcmlwdD4= here")
    assert to_plain_text("The data: strong growth") == "The data: strong growth"


def test_web_url_keeps_only_absolute_http_links() -> None:
    assert web_url(" https://Example.com/a?utm_source=x ") == "https://example.com/a"
    assert web_url("javascript:alert(1)") is None
    assert web_url("data:text/html,hi") is None
    assert web_url("/relative/path") is None
    assert web_url("ftp://example.com/file") is None


def test_canonical_url_keeps_other_parameters_as_written() -> None:
    url = "https://x.example.com/p?q=a%20b&utm_source=rss&UTM_Medium=x&id=1+2"
    assert canonical_url(url) == "https://x.example.com/p?q=a%20b&id=1+2"
    assert canonical_url("https://x.example.com/p?utm_source=rss") == "https://x.example.com/p"
