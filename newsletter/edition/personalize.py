"""Each reader's values in one rendered variant: the markers the templates are rendered with,
filled in per reader without rendering again (``Personalizer``), or handed to SendGrid as
substitutions.

A variant's markers carry a secret drawn for that render (``RenderedEmail.markers``), such as
``%%uQ3f0c…%%`` (``u`` for the unsubscribe link, upper case in the text part). Text from
outside (a feed's title or link, a config value, a reader's name) is rendered before that
secret exists and never sees it, so it cannot create a marker or move one: a reader's links
land only where the template put them. A literal ``%%unsubscribe_url%%`` in a headline stays
that text, for every mailer. An email rendered without markers (``markers == ""``, the
transactional mail) is never filled at all.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import secrets
from collections.abc import Mapping
from dataclasses import replace

from newsletter.models import RenderedEmail

# Per-reader values, filled in after rendering. The same markers go to SendGrid as substitutions.
# ``watchlist`` (HTML) and ``watchlist_text`` are the reader's "Your watchlist" block, rendered
# by our own templates (``edition.watchlist``; outside text escaped there): placed as they are
READER_FIELDS = ("unsubscribe_url", "preferences_url", "greeting", "watchlist", "watchlist_text")
# each field's marker code: lower case in the HTML part (filled HTML-escaped), upper case in the
# text part (filled raw); short, since SendGrid gets every key once per reader
_CODES = {
    "unsubscribe_url": "u",
    "preferences_url": "p",
    "greeting": "g",
    "watchlist": "w",
    "watchlist_text": "x",
}
_BLOCKS = frozenset({"watchlist", "watchlist_text"})  # not escaped: already HTML or text
_SPECIAL = re.compile(r"[&<>\"']")  # what HTML-escaping changes


def new_secret() -> str:
    """The secret of one render's markers: 96 random bits, drawn once per variant."""
    return secrets.token_urlsafe(12)


def placeholder(field: str, secret: str, *, text: bool = False) -> str:
    """The marker of ``field`` in the HTML part (or the text part) of a variant rendered with
    ``secret``."""
    code = _CODES[field]
    return f"%%{code.upper() if text else code}{secret}%%"


def html_markers(secret: str) -> dict[str, str]:
    """What the HTML template is given for each reader field (``watchlist``: the HTML block)."""
    return {field: placeholder(field, secret) for field in READER_FIELDS[:-1]}


def text_markers(secret: str) -> dict[str, str]:
    """What the text template is given for each reader field (filled without escaping;
    ``watchlist``: the text block)."""
    markers = {field: placeholder(field, secret, text=True) for field in READER_FIELDS[:-1]}
    return markers | {"watchlist": placeholder("watchlist_text", secret, text=True)}


@functools.lru_cache(maxsize=64)
def _keys(secret: str) -> tuple[tuple[str, str, str], ...]:
    """(field, its HTML marker, its text marker) for a variant's secret, made once."""
    return tuple(
        (f, placeholder(f, secret), placeholder(f, secret, text=True)) for f in READER_FIELDS
    )


@functools.lru_cache(maxsize=64)
def _pattern(secret: str) -> re.Pattern[str]:
    codes = "".join(_CODES.values())
    return re.compile(f"%%([{codes}{codes.upper()}]){re.escape(secret)}%%")


def escape(value: str) -> str:
    """A reader's value for the HTML part (most have nothing to escape: looked for first)."""
    return html_lib.escape(value, quote=True) if _SPECIAL.search(value) else value


class Personalizer:
    """One variant, split once at its markers, filled in quickly for each reader."""

    def __init__(self, email: RenderedEmail) -> None:
        self.email = email
        if email.markers:
            pattern = _pattern(email.markers)
            self._html = pattern.split(email.html)
            self._text = pattern.split(email.text)
        else:  # rendered with the reader's values in place already: nothing to fill
            self._html, self._text = [email.html], [email.text]

    def fill(self, values: Mapping[str, str]) -> RenderedEmail:
        """The email for one reader; values are escaped for the HTML part."""
        if not self.email.markers:
            return self.email
        filled: dict[str, str] = {}
        for field, code in _CODES.items():
            value = values.get(field, "")
            filled[code] = value if field in _BLOCKS else escape(value)
            filled[code.upper()] = value
        return replace(
            self.email,
            html=_join(self._html, filled),
            text=_join(self._text, filled),
            markers="",
        )


def substitutions(email: RenderedEmail, values: Mapping[str, str]) -> dict[str, str]:
    """Marker → value for one reader (SendGrid's substitutions): HTML-escaped for the HTML
    part, raw for the text; empty for an email rendered without markers."""
    if not email.markers:
        return {}
    return {
        key: escape(values.get(field, "")) if escaped else values.get(field, "")
        for field, key, escaped in substitution_keys(email.markers)
    }


@functools.lru_cache(maxsize=64)
def substitution_keys(secret: str) -> tuple[tuple[str, str, bool], ...]:
    """(reader field, marker, whether its value is HTML-escaped) of each substitution a
    variant rendered with ``secret`` takes, in order: the watchlist's HTML block in the HTML
    part only and its text block in the text part only, each as it is; every other field
    escaped in the HTML part and raw in the text."""
    keys: list[tuple[str, str, bool]] = []
    for field, html_key, text_key in _keys(secret):
        if field == "watchlist":
            keys.append((field, html_key, False))
        elif field == "watchlist_text":
            keys.append((field, text_key, False))
        else:
            keys += [(field, html_key, True), (field, text_key, False)]
    return tuple(keys)


def _join(parts: list[str], filled: Mapping[str, str]) -> str:
    # re.split with one group: text, code, text, code, ..., text
    out = parts[:]
    for i in range(1, len(out), 2):
        out[i] = filled.get(out[i], "")
    return "".join(out)
