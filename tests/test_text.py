from __future__ import annotations

import pytest

from newsletter.errors import SubscriberError
from newsletter.readers.subscriptions import clean_name
from newsletter.text import (
    canonical_url,
    decoded,
    teaser,
    to_plain_text,
    web_url,
    without_dateline,
)


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


# (as typed or stored, what must be kept): encoded-words decoded first, then every space or line
# separator one space, control and format characters (bidirectional controls too) gone
DIRTY_NAMES = [
    ("=?utf-8?q?Tab=09Name?=", "Tab Name"),
    ("Ana\u2028Ruiz", "Ana Ruiz"),
    ("Ana\u0085Ruiz\u2029", "Ana Ruiz"),
    ("\u202eAna\u202c Ruiz", "Ana Ruiz"),
    ("\u2066Bo\u2069\u200e \u200fYu\u061c\u202a\u202b\u202d\u2067\u2068", "Bo Yu"),
    ("=?utf-8?b?QW5hDQpCY2M6IGFsbEBleGFtcGxlLmNvbQ==?=", "Ana Bcc: all@example.com"),
    (" \tJosé\r\n  Núñez\x00\x07\x1b\u00a0\u3000 ", "José Núñez"),
    ("=?utf-8?q?=3D=3Futf-8=3Fq=3FA=3D09B=3F=3D?=", "A B"),  # encoded twice
    ("=\x00?utf-8?q?C=09D?=", "C D"),  # an encoded-word that appears once the NUL is gone
]


@pytest.mark.parametrize(("typed", "kept"), DIRTY_NAMES)
def test_a_name_is_reduced_to_printable_single_line_text(typed: str, kept: str) -> None:
    assert clean_name(typed) == kept
    assert clean_name(kept) == kept  # cleaning what was cleaned changes nothing
    assert kept.isprintable() and decoded(kept) == kept


def test_only_a_name_too_long_after_cleaning_or_with_angle_brackets_is_refused() -> None:
    assert clean_name("A" * 150 + "\t" * 300 + "B") == "A" * 150 + " B"
    with pytest.raises(SubscriberError, match="at most 200 characters"):
        clean_name("A" * 201)
    for hidden in ("Ana <x@evil.example>", "=?utf-8?q?Ana_=3Cx=40evil.example=3E?="):
        with pytest.raises(SubscriberError, match="< or >"):
            clean_name(hidden)
    assert clean_name("") == "" and clean_name("\u202e\t") == ""


def test_feed_text_loses_its_bidirectional_controls() -> None:
    assert to_plain_text("Shares \u202erise\u202c today") == "Shares rise today"
    assert to_plain_text("<p>\u2066Oil\u2069 &amp; \u200fgas\u061c</p>") == "Oil & gas"


@pytest.mark.parametrize(
    ("lead", "rest"),
    [
        ("LONDON, Aug 21 : Prices rose.", "Prices rose."),
        ("NEW YORK/PARIS, Aug 21 : Prices rose.", "Prices rose."),
        ("PARIS (Wire) - Prices rose.", "Prices rose."),
        ("BEIJING: Prices rose.", "Prices rose."),
        ("Aug 21 : Prices rose.", "Prices rose."),
        ("US officials said prices rose.", "US officials said prices rose."),
        ("NATO-led forces moved in.", "NATO-led forces moved in."),
        ("Prices rose in London: a wire.", "Prices rose in London: a wire."),
    ],
)
def test_a_wires_dateline_is_taken_off_its_lead(lead: str, rest: str) -> None:
    assert without_dateline(lead) == rest
