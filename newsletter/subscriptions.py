"""The subscriber life cycle: validated, normalised addresses, tokens, adding readers."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import SubscriberError
from newsletter.models import Subscriber
from newsletter.store import Store

MAX_NAME = 200


def normalise_email(address: str) -> str:
    """The address checked for syntax only (no DNS) and normalised, or ``SubscriberError``."""
    try:
        checked = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(
            f"{address!r} is not a valid email address: {exc}",
            hint="Give an address like name@example.com.",
        ) from None
    return checked.normalized.lower() if checked.ascii_email else checked.normalized


def clean_name(name: str) -> str:
    if "\r" in name or "\n" in name:
        raise SubscriberError(
            "a name cannot contain line breaks", hint="Give the name on one line."
        )
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise SubscriberError(f"a name is at most {MAX_NAME} characters", hint="Shorten it.")
    return name


def new_token() -> str:
    """An unguessable token (192 random bits) for a reader's links."""
    return secrets.token_urlsafe(24)


def add_subscriber(
    store: Store,
    address: str,
    *,
    name: str = "",
    sectors: Sequence[str] = (),
    known_sectors: Sequence[str],
    status: str = "confirmed",
    now: datetime,
) -> tuple[Subscriber, bool]:
    """Add a reader (or update a known one's name and sectors); (reader, created)."""
    unknown = [s for s in sectors if s not in known_sectors]
    if unknown:
        raise SubscriberError(
            f"unknown sector {', '.join(map(repr, unknown))}",
            hint=f"Use the configured slugs: {', '.join(known_sectors)}.",
        )
    return store.upsert_subscriber(
        normalise_email(address),
        name=clean_name(name),
        sectors=list(dict.fromkeys(sectors)),
        status=status,
        token=new_token(),
        now=now,
    )
