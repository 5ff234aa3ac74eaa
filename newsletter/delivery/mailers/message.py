"""One reader's copy as a MIME message: text and HTML alternatives, and the list headers."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from newsletter.edition.personalize import Personalizer
from newsletter.models import Batch, BatchResult, Recipient, RenderedEmail
from newsletter.text import plain_name


def list_headers(unsubscribe_url: str, list_id: str = "") -> dict[str, str]:
    """RFC 2369 and RFC 8058 one-click unsubscribe headers, and RFC 2919's List-Id (which
    mailbox providers use to group a list's mail and its complaints)."""
    headers = {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    if list_id:
        headers["List-Id"] = list_id
    return headers


def reader_tag(key: bytes, edition_id: int, subscriber_id: int) -> str:
    """What signs the reader (and edition) a Message-ID or a VERP address names, so that a
    bounce report naming them is believed only if we made it (an HMAC under the privacy key:
    anyone can write to a bounce mailbox)."""
    signed = f"bounce:{edition_id}:{subscriber_id}".encode()
    return hmac.new(key, signed, hashlib.sha256).hexdigest()[:12]


def build_message(
    email: RenderedEmail,
    recipient: Recipient,
    *,
    from_address: str,
    edition_id: int,
    edition_date: date,
    list_id: str = "",
    tag_key: bytes = b"",
) -> EmailMessage:
    """The personalised message for one reader (placeholders already filled in ``email``);
    ``tag_key`` signs the reader its Message-ID names (``reader_tag``)."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = to_address(recipient.name, recipient.email)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"
    # an edition's message names it (a bounce report's Message-ID says which); a transactional
    # one (edition 0: a confirmation, a welcome) names only the reader
    edition = f"e{edition_id}." if edition_id else ""
    reader = f"s{recipient.subscriber_id}"
    if tag_key:
        reader += ".m" + reader_tag(tag_key, edition_id, recipient.subscriber_id)
    message["Message-ID"] = make_msgid(idstring=f"{edition}{reader}", domain=domain)
    for key, value in list_headers(recipient.values["unsubscribe_url"], list_id).items():
        message[key] = value
    if edition_id:
        message["X-Newsletter-Edition"] = edition_date.isoformat()
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


# an address of the usual shape (letters, digits, ._%+- before the @; a dotted domain): one a
# header carries as it is, known without the parser (a twelfth of its cost, per reader)
_PLAIN = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def to_header(name: str, address: str) -> str:
    """The To header for a reader, the name cleaned as ``text.plain_name`` cleans it (a name an
    older version stored never fails a delivery); ``ValueError`` when the address cannot go in
    a header. (SendGrid's check of each reader: only an unusual address is parsed.)"""
    if _PLAIN.fullmatch(address):
        return formataddr((plain_name(name), address))
    return formataddr((to_address(name, address).display_name, address))


def to_address(name: str, address: str) -> Address:
    """``to_header`` as the message's header takes it: the whole name quoted or encoded as one
    (a comma or parentheses in "O'Brien, Ren\u00e9e" or "M\u00fcller (CEO)" never split it)."""
    address.encode("ascii")  # UnicodeEncodeError (a ValueError) for an internationalised one
    if any(ord(c) < 32 or c == "\x7f" for c in address):
        raise ValueError("the address holds control characters")
    try:
        return Address(display_name=plain_name(name), addr_spec=address)
    except (HeaderParseError, IndexError) as exc:  # (a defect is a ValueError already)
        raise ValueError(f"not one address: {exc or 'empty'}") from None


def personal_messages(
    batch: Batch,
    from_address: str,
    failed: dict[int, str],
    list_id: str = "",
    tag_key: bytes = b"",
) -> Iterator[tuple[Recipient, EmailMessage]]:
    """Each recipient with their own message; a reader whose message cannot be built goes to
    ``failed`` with the reason (that reader fails alone; the others go on)."""
    personalizer = Personalizer(batch.email)
    for recipient in batch.recipients:
        try:
            message = build_message(
                personalizer.fill(recipient.values),
                recipient,
                from_address=from_address,
                edition_id=batch.edition_id,
                edition_date=batch.edition_date,
                list_id=list_id,
                tag_key=tag_key,
            )
        except (ValueError, TypeError) as exc:
            failed[recipient.delivery_id] = (
                f"the message for {recipient.email!r} cannot be built: {exc}"
            )
            continue
        yield recipient, message


def rehearsed(batch: Batch, from_address: str, list_id: str = "") -> BatchResult:
    """A dry run's outcome: each reader's message built and none sent; a reader whose message
    cannot be built would fail, and does here."""
    failed: dict[int, str] = {}
    messages = personal_messages(batch, from_address, failed, list_id)
    return BatchResult(sent={r.delivery_id: "dry-run" for r, _ in messages}, failed=failed)
