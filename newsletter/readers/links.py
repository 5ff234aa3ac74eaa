"""Every link a reader gets, built here and nowhere else: the web app's routes answer these
paths, the emails carry them, the pages' forms post to them."""

from __future__ import annotations

from newsletter.models import Subscriber
from newsletter.text import plain_name

PREVIEW_TOKEN = "PREVIEW"  # noqa: S105 (the stand-in reader of previews: no secret)


def confirm_path(token: str) -> str:
    return f"/confirm/{token}"


def renew_path(token: str) -> str:
    return f"/confirm/{token}/renew"


def preferences_path(token: str) -> str:
    return f"/preferences/{token}"


def unsubscribe_path(token: str) -> str:
    return f"/unsubscribe/{token}"


def absolute(base_url: str, path: str) -> str:
    """A path of the web app as a full link, from ``publication.base_url``."""
    return base_url.rstrip("/") + path


def first_name(reader: Subscriber) -> str:
    """The first word of the reader's name, as cleaned today (whatever an older version
    stored), without the comma of "O'Brien, Ren\u00e9e", or ''."""
    name = plain_name(reader.name)
    return name.split()[0].rstrip(",;:") if name else ""


def reader_values(base_url: str, reader: Subscriber, *, hour: int | None = None) -> dict[str, str]:
    """What fills one reader's markers in an email: their own links, and the greeting for
    ``hour``, the reader's local hour when it goes (None: a morning edition's, as previews
    show it)."""
    first = first_name(reader)
    said = _time_of_day(hour)
    return {
        "unsubscribe_url": absolute(base_url, unsubscribe_path(reader.token)),
        "preferences_url": absolute(base_url, preferences_path(reader.token)),
        "greeting": f"{said}, {first}." if first else f"{said}.",
    }


def _time_of_day(hour: int | None) -> str:
    if hour is None or 5 <= hour < 12:
        return "Good morning"
    if 12 <= hour < 18:
        return "Good afternoon"
    return "Good evening" if 18 <= hour < 23 else "Hello"  # not "good night" to a new email


def hello(reader: Subscriber) -> str:
    """The greeting of a transactional email, which goes at any hour: no time of day."""
    first = first_name(reader)
    return f"Hello, {first}." if first else "Hello."


def preview_values(base_url: str) -> dict[str, str]:
    """Stand-in reader values for previews and test copies."""
    return reader_values(base_url, Subscriber(0, "", token=PREVIEW_TOKEN))


def confirm_url(base_url: str, token: str) -> str:
    return absolute(base_url, confirm_path(token))
