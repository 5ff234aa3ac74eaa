"""The body of one ``/v3/mail/send`` request, written as JSON text directly.

A request carries one variant for up to 1,000 readers. The variant's part (subject, the HTML
and text, categories, settings) is encoded once per variant and kept for the requests that
follow; each reader's personalization (address, name, the marker substitutions, our ids, the
list headers) is written from a few pieces encoded by the ``json`` module's C string encoder.
That was most of a send's own work at a hundred thousand readers, which ``json.dumps`` of a
dict per reader made several times dearer. The text reads back as the same request as
``json.dumps`` of the dicts would (``tests/test_mailers.py`` checks it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from newsletter.delivery.mailers.message import list_headers
from newsletter.edition.personalize import escape, substitution_keys
from newsletter.models import Batch, Recipient, RenderedEmail
from newsletter.text import plain_name

_string = json.encoder.encode_basestring_ascii  # a str as JSON, as json.dumps writes it


def categories(batch: Batch) -> list[str]:
    """SendGrid's categories (its per-category stats): the edition's day, or ``transactional``
    and the kind of a confirmation, welcome or already-subscribed email, which must not count
    as the edition's."""
    if batch.kind is not None:
        return ["transactional", batch.kind.value]
    return [f"edition-{batch.edition_date.isoformat()}"]


def custom_args(batch: Batch, subscriber_id: int) -> dict[str, str]:
    """Our ids, which SendGrid's events carry back: the reader's, and the edition's for the
    edition's copies only (an event without one is counted for no edition)."""
    if batch.kind is not None:
        return {"subscriber_id": str(subscriber_id)}
    return {"edition_id": str(batch.edition_id), "subscriber_id": str(subscriber_id)}


def shown_name(name: str) -> dict[str, str]:
    """The personalization's name, cleaned as the To header's is; none when it is empty."""
    shown = plain_name(name)
    return {"name": shown} if shown else {}


def body(
    batch: Batch, *, sender: Mapping[str, str], tracking: Mapping[str, Any], list_id: str
) -> str:
    """The request for ``batch`` as JSON text."""
    people = ",".join(map(_People(batch, list_id).person, batch.recipients))
    rest = _variant_part(
        batch.email,
        json.dumps(dict(sender)),
        json.dumps(categories(batch)),
        batch.dry_run,
        json.dumps(dict(tracking)),
    )
    return '{"personalizations":[' + people + "]," + rest


_HOLE = "\x00"  # where a reader's value goes in a part encoded once per request


class _People:
    """One request's personalizations: what all its readers share (the substitutions' keys,
    the edition's id, the list's headers) encoded once, each reader's own values in their
    places."""

    def __init__(self, batch: Batch, list_id: str) -> None:
        markers = batch.email.markers
        keys = substitution_keys(markers) if markers else ()
        self._subs = [(field, _string(key) + ":", escaped) for field, key, escaped in keys]
        shared = custom_args(batch, 0)
        del shared["subscriber_id"]  # the reader's own: written for each
        self._ids = "".join(_string(k) + ":" + _string(v) + "," for k, v in shared.items())
        headers = ",".join(
            _string(k) + ":" + _string(v) for k, v in list_headers(_HOLE, list_id).items()
        )
        self._headers = headers.partition(_string(_HOLE)[1:-1])[::2]

    def person(self, reader: Recipient) -> str:
        values = reader.values
        to = '{"email":' + _string(reader.email)
        name = plain_name(reader.name)
        if name:
            to += ',"name":' + _string(name)
        subs = ",".join(
            [
                key + _string(escape(values.get(field, "")) if escaped else values.get(field, ""))
                for field, key, escaped in self._subs
            ]
        )
        before, after = self._headers
        return (
            '{"to":['
            + to
            + '}],"substitutions":{'
            + subs
            + '},"custom_args":{'
            + self._ids
            + '"subscriber_id":"'
            + str(reader.subscriber_id)
            + '"},"headers":{'
            + before
            + _string(values["unsubscribe_url"])[1:-1]
            + after
            + "}}"
        )


@functools.lru_cache(maxsize=16)  # claims meet the variants in turn: the recent few suffice
def _variant_part(
    email: RenderedEmail, sender: str, categories_: str, dry_run: bool, tracking: str
) -> str:
    """Everything after the personalizations, encoded once per variant: ``"from": ...}``."""
    content = json.dumps(
        [{"type": "text/plain", "value": email.text}, {"type": "text/html", "value": email.html}]
    )
    sandbox = json.dumps({"sandbox_mode": {"enable": dry_run}})
    return (
        f'"from":{sender},"subject":{_string(email.subject)},"content":{content},'
        f'"categories":{categories_},"mail_settings":{sandbox},"tracking_settings":{tracking}}}'
    )
