"""Reading what a browser sends, defensively: capped bodies, one value per field, length
limits, the CSRF double-submit check, and the client's address behind trusted proxies."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import parse_qs

from starlette.requests import Request

from newsletter.models import Subscriber
from newsletter.readers.subscriptions import MAX_NAME_TYPED

MAX_BODY = 16 * 1024  # bytes of a form post
MAX_SECTORS = 20
CSRF_COOKIE = "csrf"


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def body_of(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request's body, refused (413) past ``limit`` bytes, declared or sent."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, "That form was too large.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, "That form was too large.")
    return bytes(body)


async def form_of(request: Request, *, csrf: bool = True) -> dict[str, list[str]]:
    body = await body_of(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise BadRequest(415, "Send the form as application/x-www-form-urlencoded.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(400, "That form could not be read.") from None
    if csrf:
        sent = (fields.get("csrf") or [""])[0]
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not sent or not cookie or not hmac.compare_digest(sent, cookie):
            raise BadRequest(403, "This form has expired. Open the page again and resend it.")
    return fields


def one(fields: Mapping[str, list[str]], key: str, limit: int) -> str:
    values = fields.get(key) or [""]
    if len(values) > 1:
        raise BadRequest(400, f"The field {key} was sent twice.")
    if len(values[0]) > limit:
        raise BadRequest(400, f"The field {key} is longer than {limit} characters.")
    return values[0]


def chosen(fields: Mapping[str, list[str]]) -> list[str]:
    values = fields.get("sectors") or []
    if len(values) > MAX_SECTORS or any(len(v) > 64 for v in values):
        raise BadRequest(400, "Too many sectors.")
    return values


WHEN_FIELDS = ("timezone", "hour", "frequency", "weekday")  # when a reader gets an edition
MAX_WATCHLIST_TYPED = 2000  # characters of the watchlist's box


def when_of(fields: Mapping[str, list[str]]) -> dict[str, str]:
    """The form's delivery fields as sent (checked by ``slot_of``)."""
    return {key: one(fields, key, 64) for key in WHEN_FIELDS}


def typed_reader(reader: Subscriber, fields: Mapping[str, list[str]]) -> Subscriber:
    """A reader with the name, sectors and watchlist their preferences form holds (to show the
    form again as they filled it)."""
    terms = fields.get("watchlist", [""])[0]
    return replace(
        reader,
        name=one(fields, "name", MAX_NAME_TYPED),
        sectors=tuple(chosen(fields)),
        watchlist=tuple(term.strip() for term in terms.splitlines() if term.strip()),
    )


def client_ip(request: Request, trusted: frozenset[str]) -> str:
    """The peer's address; behind a trusted proxy, the last hop it names that is not one."""
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if hop not in trusted:
            return hop
    return peer
