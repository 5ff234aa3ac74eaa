"""One reader's copy as a MIME message: text and HTML alternatives, and the list headers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from newsletter.models import Recipient, RenderedEmail
from newsletter.render import Personalizer


def list_headers(unsubscribe_url: str) -> dict[str, str]:
    """RFC 2369 and RFC 8058 one-click unsubscribe headers."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def build_message(
    email: RenderedEmail,
    recipient: Recipient,
    *,
    from_address: str,
    edition_id: int,
    edition_date: date,
) -> EmailMessage:
    """The personalised message for one reader (placeholders already filled in ``email``)."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = formataddr((recipient.name, recipient.email))
    message["Subject"] = email.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(
        idstring=f"e{edition_id}.s{recipient.subscriber_id}", domain=domain
    )
    for key, value in list_headers(recipient.values["unsubscribe_url"]).items():
        message[key] = value
    message["X-Newsletter-Edition"] = edition_date.isoformat()
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def personal_messages(
    email: RenderedEmail,
    recipients: Sequence[Recipient],
    *,
    from_address: str,
    edition_id: int,
    edition_date: date,
) -> Iterator[tuple[Recipient, EmailMessage]]:
    """Each recipient with their own message, the variant filled in once per reader."""
    personalizer = Personalizer(email)
    for recipient in recipients:
        message = build_message(
            personalizer.fill(recipient.values),
            recipient,
            from_address=from_address,
            edition_id=edition_id,
            edition_date=edition_date,
        )
        yield recipient, message
