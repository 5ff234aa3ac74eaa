"""Each reader's values in one rendered variant: the placeholders (``%%name%%``) the templates
are rendered with, filled in per reader without rendering again (``Personalizer``), or handed
to SendGrid as substitutions."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import replace

from newsletter.models import RenderedEmail

# Per-reader values, filled in after rendering. The same markers go to SendGrid as substitutions.
READER_FIELDS = ("unsubscribe_url", "preferences_url", "greeting")
# The HTML part holds %%field%% (filled HTML-escaped), the text part %%field.text%% (filled raw).
_PLACEHOLDER = re.compile(r"%%((?:" + "|".join(READER_FIELDS) + r")(?:\.text)?)%%")


def placeholder(field: str) -> str:
    return f"%%{field}%%"


class Personalizer:
    """One variant, split once at its placeholders, filled in quickly for each reader."""

    def __init__(self, email: RenderedEmail) -> None:
        self.email = email
        self._html = _PLACEHOLDER.split(email.html)
        self._text = _PLACEHOLDER.split(email.text)

    def fill(self, values: Mapping[str, str]) -> RenderedEmail:
        """The email for one reader; values are escaped for the HTML part."""
        filled = substitutions(values)
        return replace(self.email, html=_join(self._html, filled), text=_join(self._text, filled))


def substitutions(values: Mapping[str, str]) -> dict[str, str]:
    """Placeholder → value for one reader: HTML-escaped for the HTML part, raw for the text."""
    out: dict[str, str] = {}
    for field, value in values.items():
        out[placeholder(field)] = html_lib.escape(value, quote=True)
        out[placeholder(f"{field}.text")] = value
    return out


def _join(parts: list[str], filled: Mapping[str, str]) -> str:
    # re.split with one group: text, field, text, field, ..., text
    out = parts[:]
    for i in range(1, len(out), 2):
        out[i] = filled.get(placeholder(out[i]), "")
    return "".join(out)


def preview_values(base_url: str) -> dict[str, str]:
    """Stand-in reader values for previews."""
    base = base_url.rstrip("/")
    return {
        "unsubscribe_url": f"{base}/unsubscribe/PREVIEW",
        "preferences_url": f"{base}/preferences/PREVIEW",
        "greeting": "Good morning.",
    }
