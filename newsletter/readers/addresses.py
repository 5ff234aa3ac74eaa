"""A reader's address, checked for syntax (never DNS) and normalised: the one form every table
keys on."""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import SubscriberError

MAX_EMAIL = 254  # characters in an address, as typed


def normalise_email(address: str) -> str:
    """The address checked for syntax only (no DNS) and normalised, or ``SubscriberError``.

    A plain address (letters, digits, ``_+-`` and single dots before the @) has only its domain
    checked by email-validator, once per domain; any other goes through email-validator whole.
    Both give the same answer (``tests/test_subscribers.py`` compares them).
    """
    if len(address) > MAX_EMAIL:
        raise SubscriberError(
            f"an address is at most {MAX_EMAIL} characters", hint="Check the address."
        )
    if len(address.strip().rsplit("@", 1)[0]) > 64:  # RFC 5321; providers refuse longer
        raise SubscriberError(
            "the part of an address before the @ is at most 64 characters",
            hint="Check the address.",
        )
    plain = _PLAIN.match(address.strip().lower())
    if plain is not None and len(plain["local"]) <= 64:
        domain = _checked_domain(plain["domain"])
        if domain is not None:
            return f"{plain['local']}@{domain}"
    try:
        checked = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if not address.split("@")[0].isascii():
            raise SubscriberError(
                f"{address!r} has letters outside ASCII before the @, which the mail "
                "providers this tool sends through cannot deliver",
                hint="Ask the reader for an ASCII address (a domain may have accents).",
            ) from None
        raise SubscriberError(
            f"{address!r} is not a valid email address: {exc}",
            hint="Give an address like name@example.com.",
        ) from None
    # mailbox providers ignore case: José@x and josé@x are one reader
    return (checked.ascii_email or checked.normalized).lower()


_PLAIN = re.compile(r"(?P<local>[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)@(?P<domain>[^@\s]+)\Z")


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    """A domain as email-validator normalises it, or None when it refuses it (then the whole
    address goes through email-validator, for its message)."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return str(checked.ascii_domain or checked.domain).lower()
