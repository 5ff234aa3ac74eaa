"""Each reader's values in one rendered variant: the markers the templates are rendered with,
filled in per reader without rendering again (``Personalizer``), or handed to SendGrid as
substitutions.

A variant's markers carry a secret drawn for that render (``RenderedEmail.markers``), such as
``%%unsubscribe_url~3f0c…%%``. Text from outside (a feed's title or link, a config value, a
reader's name) is rendered before that secret exists and never sees it, so it cannot create a
marker or move one: a reader's links land only where the template put them. A literal
``%%unsubscribe_url%%`` in a headline stays that text, for every mailer. An email rendered
without markers (``markers == ""``, the transactional mail) is never filled at all.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
from collections.abc import Mapping
from dataclasses import replace

from newsletter.models import RenderedEmail

# Per-reader values, filled in after rendering. The same markers go to SendGrid as substitutions.
READER_FIELDS = ("unsubscribe_url", "preferences_url", "greeting")
TEXT = ".text"  # the text part holds %%field.text~secret%% (filled raw), the HTML %%field~secret%%


def new_secret() -> str:
    """The secret of one render's markers: 96 random bits, drawn once per variant."""
    return secrets.token_hex(12)


def placeholder(field: str, secret: str) -> str:
    """The marker of ``field`` (or ``field.text``) in a variant rendered with ``secret``."""
    return f"%%{field}~{secret}%%"


def html_markers(secret: str) -> dict[str, str]:
    """What the HTML template is given for each reader field."""
    return {field: placeholder(field, secret) for field in READER_FIELDS}


def text_markers(secret: str) -> dict[str, str]:
    """What the text template is given for each reader field (filled without escaping)."""
    return {field: placeholder(field + TEXT, secret) for field in READER_FIELDS}


def _pattern(secret: str) -> re.Pattern[str]:
    fields = "|".join(re.escape(f) for f in READER_FIELDS)
    return re.compile(f"%%((?:{fields})(?:{re.escape(TEXT)})?)~{re.escape(secret)}%%")


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
        html_values, text_values = _escaped(values)
        return replace(
            self.email,
            html=_join(self._html, html_values),
            text=_join(self._text, text_values),
            markers="",
        )


def substitutions(email: RenderedEmail, values: Mapping[str, str]) -> dict[str, str]:
    """Marker → value for one reader (SendGrid's substitutions): HTML-escaped for the HTML
    part, raw for the text; empty for an email rendered without markers."""
    if not email.markers:
        return {}
    html_values, text_values = _escaped(values)
    out = {placeholder(field, email.markers): value for field, value in html_values.items()}
    out.update({placeholder(field, email.markers): value for field, value in text_values.items()})
    return out


def _escaped(values: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(field → value for the HTML part, field.text → value for the text part)."""
    html_values = {f: html_lib.escape(v, quote=True) for f, v in values.items()}
    text_values = {f + TEXT: v for f, v in values.items()}
    return html_values, text_values


def _join(parts: list[str], filled: Mapping[str, str]) -> str:
    # re.split with one group: text, field, text, field, ..., text
    out = parts[:]
    for i in range(1, len(out), 2):
        out[i] = filled.get(out[i], "")
    return "".join(out)


def preview_values(base_url: str) -> dict[str, str]:
    """Stand-in reader values for previews."""
    base = base_url.rstrip("/")
    return {
        "unsubscribe_url": f"{base}/unsubscribe/PREVIEW",
        "preferences_url": f"{base}/preferences/PREVIEW",
        "greeting": "Good morning.",
    }
