"""A form with a file (``multipart/form-data``), read defensively: the body capped, the CSRF
token checked as ``forms.form_of`` does, one value per field. Parsed with the standard
library's MIME parser (no multipart package needed)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser

from starlette.requests import Request

from newsletter.web.forms import CSRF_COOKIE, BadRequest, body_of

MAX_UPLOAD = 20 * 1024 * 1024  # bytes: a CSV of some 300,000 readers; the shell takes more


@dataclass(frozen=True, slots=True)
class Upload:
    fields: dict[str, str]
    name: str  # the file's name as the browser gave it
    data: bytes


async def upload_of(request: Request, *, field: str, limit: int = MAX_UPLOAD) -> Upload:
    """The posted form and its file ``field`` (empty when none was chosen)."""
    kind = request.headers.get("content-type", "")
    if kind.split(";")[0].strip().lower() != "multipart/form-data":
        raise BadRequest(415, "Send the file with the page's form (multipart/form-data).")
    body = await body_of(request, limit)
    head = f"Content-Type: {kind}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest(400, "That form could not be read.")
    fields: dict[str, str] = {}
    name, data = "", b""
    for part in message.iter_parts():
        key = part.get_param("name", header="content-disposition")
        if not isinstance(key, str) or key in fields:
            raise BadRequest(400, "That form could not be read.")
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        if key == field:
            name, data = str(part.get_filename() or ""), raw
            fields[key] = name
        else:
            fields[key] = raw.decode("utf-8", "replace")[:2_000]
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = fields.get("csrf", "")
    if not sent or not cookie or not hmac.compare_digest(sent, cookie):
        raise BadRequest(403, "This form has expired. Open the page again and resend it.")
    return Upload(fields, name, data)
