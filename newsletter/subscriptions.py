"""The subscriber life cycle: sign-up with double opt-in, confirm, preferences, unsubscribe,
erasure, and CSV import and export. Every change is recorded as a consent event.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from email_validator import EmailNotValidError, validate_email

from newsletter.config import Config
from newsletter.errors import SubscriberError
from newsletter.mailers import Mailer, reader_values
from newsletter.models import Recipient, RenderedEmail, Subscriber, SubscriberStatus
from newsletter.render import make_environment
from newsletter.store import Store
from newsletter.store.consent import email_hash
from newsletter.text import decoded

MAX_NAME = 200
MAX_EMAIL = 254
CONFIRMATION_INTERVAL = timedelta(hours=1)
CONFIRMATION = "confirmation"  # the kind of queued email


MAX_CELL = 1_000  # a CSV field longer than this is refused (an address is at most 254)
FORMULA_STARTS = frozenset("=+-@\t\r")  # cells a spreadsheet would run as a formula


def consent_wording(publication: str) -> str:
    """The sentence shown next to the sign-up button, stored with each sign-up."""
    return (
        f"I want to receive {publication} by email each morning, with the sectors I chose. "
        "I can change them or unsubscribe at any time from a link in every email."
    )


def normalise_email(address: str) -> str:
    """The address checked for syntax only (no DNS) and normalised, or ``SubscriberError``."""
    if len(address) > MAX_EMAIL:
        raise SubscriberError(
            f"an address is at most {MAX_EMAIL} characters", hint="Check the address."
        )
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


def clean_name(name: str) -> str:
    shown = decoded(name)  # an RFC 2047 encoded-word may hide a line break
    if "\r" in shown or "\n" in shown:
        raise SubscriberError(
            "a name cannot contain line breaks", hint="Give the name on one line."
        )
    if any(not c.isprintable() and not c.isspace() for c in shown) or "\x00" in shown:
        raise SubscriberError("a name cannot contain control characters", hint="Give a plain name.")
    if "<" in name or ">" in name:
        raise SubscriberError("a name cannot contain < or >", hint="Give a plain name.")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise SubscriberError(f"a name is at most {MAX_NAME} characters", hint="Shorten it.")
    return name


def check_sectors(sectors: Sequence[str], known: Sequence[str]) -> list[str]:
    unknown = [s for s in sectors if s not in known]
    if unknown:
        raise SubscriberError(
            f"unknown sector {', '.join(map(repr, unknown[:3]))}",
            hint=f"Use the configured slugs: {', '.join(known)}.",
        )
    return list(dict.fromkeys(sectors))


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
    source: str = "cli",
) -> tuple[Subscriber, bool]:
    """Add a reader (or update a known one's name and sectors); (reader, created)."""
    email = normalise_email(address)
    if store.is_suppressed(email):
        raise SubscriberError(
            f"{email} was removed before and cannot be added again",
            hint="Addresses erased with `subscribers remove` stay suppressed.",
        )
    reader, created = store.upsert_subscriber(
        email,
        name=clean_name(name),
        sectors=check_sectors(sectors, known_sectors),
        status=status,
        token=new_token(),
        now=now,
    )
    kind = "added" if created else "updated"
    store.add_event(reader, kind, now=now, source=source, details={"sectors": list(reader.sectors)})
    return reader, created


# --- the web's life cycle ----------------------------------------------------------------------


def sign_up(
    config: Config,
    store: Store,
    *,
    address: str,
    name: str,
    sectors: Sequence[str],
    source: str,
    now: datetime,
) -> str:
    """Record a sign-up and queue a confirmation email; what happened, for logs only.

    Nothing here waits on a mail provider: the confirmation goes through the ``outgoing``
    queue. A known pending reader's name and sectors do not change now: the choice is kept with
    the queued email, and the newest one applies when the reader confirms. The caller shows the
    same page whatever happened, so nobody can learn who subscribed.
    """
    email = normalise_email(address)
    name = clean_name(name)
    chosen = check_sectors(sectors, config.sector_slugs)
    if store.is_suppressed(email):
        return "suppressed"
    reader = store.subscriber_by_email(email)
    if reader is not None and reader.status == "confirmed":
        return "already confirmed"
    if reader is None:
        reader, _ = store.upsert_subscriber(
            email, name=name, sectors=chosen, status="pending", token=new_token(), now=now
        )
    elif reader.status != SubscriberStatus.PENDING:
        store.update_subscriber(reader.id, now=now, status=SubscriberStatus.PENDING)
    store.add_event(
        reader,
        "signup",
        now=now,
        source=source,
        wording=consent_wording(config.publication.name),
        details={"sectors": chosen, "name": name},
    )
    last = store.last_mail_sent_at(reader.id, kind=CONFIRMATION)
    held = last is not None and now - last < CONFIRMATION_INTERVAL
    store.queue_mail(reader.id, kind=CONFIRMATION, name=name, sectors=chosen, now=now, held=held)
    return "choice kept; a confirmation went less than an hour ago" if held else "queued"


def confirmation_expired(config: Config, store: Store, reader: Subscriber, now: datetime) -> bool:
    """Whether a pending reader's newest confirmation link is past ``confirm_link_days``."""
    if reader.status != SubscriberStatus.PENDING:
        return False
    asked = store.last_mail_sent_at(reader.id, kind=CONFIRMATION)
    if asked is None:
        return False
    return now - asked > timedelta(days=config.file.signup.confirm_link_days)


def renew_confirmation(store: Store, reader: Subscriber, *, now: datetime) -> None:
    """Queue a fresh confirmation link with the reader's newest choice."""
    newest = store.latest_mail(reader.id, kind=CONFIRMATION)
    name = newest.name if newest else reader.name
    sectors = newest.sectors if newest else reader.sectors
    store.queue_mail(reader.id, kind=CONFIRMATION, name=name, sectors=sectors, now=now)


def send_confirmation(
    config: Config, mailer: Mailer, reader: Subscriber, *, sectors: Sequence[str], day: date
) -> None:
    env = make_environment(config.templates_dir)
    names = {s.slug: s.name for s in config.sectors}
    base = config.publication.base_url.rstrip("/")
    context = {
        "publication": config.publication.name,
        "postal_address": config.publication.postal_address,
        "lang": config.publication.language,
        "sectors": [names[s] for s in sectors],
        "confirm_url": f"{base}/confirm/{reader.token}",
    }
    email = RenderedEmail(
        subject=f"Confirm your subscription to {config.publication.name}",
        html=env.get_template("confirm.html.j2").render(context),
        text=env.get_template("confirm.txt.j2").render(context),
    )
    recipient = Recipient(0, reader.id, reader.email, reader.name, reader_values(base, reader))
    result = mailer.send_batch(email, [recipient], edition_id=0, edition_date=day)
    if result.failed:
        raise SubscriberError(
            f"the confirmation email could not be sent: {result.failed[0]}",
            hint="Check the delivery settings in the config.",
        )


def reader_for(store: Store, token: str) -> Subscriber:
    reader = store.subscriber_by_token(token)
    if reader is None:
        raise SubscriberError("unknown link", hint="Use the link from your latest email.")
    return reader


def confirm(store: Store, token: str, *, source: str, now: datetime) -> Subscriber:
    """Confirm a reader; the newest choice of name and sectors from a sign-up applies now."""
    reader = reader_for(store, token)
    if reader.status != "confirmed":
        newest = store.latest_mail(reader.id, kind=CONFIRMATION)
        if newest is not None:
            store.update_subscriber(
                reader.id,
                now=now,
                status=SubscriberStatus.CONFIRMED,
                name=newest.name,
                sectors=newest.sectors,
            )
        else:
            store.update_subscriber(reader.id, now=now, status=SubscriberStatus.CONFIRMED)
        store.add_event(reader, "confirm", now=now, source=source)
    return reader_for(store, token)


def change_preferences(
    store: Store,
    token: str,
    *,
    name: str,
    sectors: Sequence[str],
    known_sectors: Sequence[str],
    source: str,
    now: datetime,
) -> Subscriber:
    reader = reader_for(store, token)
    name = clean_name(name)
    chosen = check_sectors(sectors, known_sectors)
    store.update_subscriber(reader.id, now=now, name=name, sectors=chosen)
    store.add_event(
        reader, "preferences", now=now, source=source, details={"sectors": chosen, "name": name}
    )
    return reader_for(store, token)


def unsubscribe(store: Store, token: str, *, source: str, now: datetime) -> Subscriber:
    reader = reader_for(store, token)
    if reader.status != "unsubscribed":
        store.update_subscriber(reader.id, now=now, status="unsubscribed")
        store.add_event(reader, "unsubscribe", now=now, source=source)
    return reader_for(store, token)


def resubscribe(
    store: Store, token: str, *, publication: str, source: str, now: datetime
) -> Subscriber:
    """An unsubscribed reader asks, from their own link, to get the newsletter again."""
    reader = reader_for(store, token)
    if reader.status != SubscriberStatus.UNSUBSCRIBED:
        return reader
    if store.is_suppressed(reader.email):
        raise SubscriberError(
            "this address cannot be subscribed again",
            hint="Write to the publisher if you want the newsletter again.",
        )
    store.update_subscriber(reader.id, now=now, status=SubscriberStatus.CONFIRMED)
    store.add_event(
        reader,
        "resubscribe",
        now=now,
        source=source,
        details={"consent": consent_wording(publication)},
    )
    return reader_for(store, token)


def erase_person(config: Config, store: Store, address: str, *, now: datetime) -> bool:
    """Erase a person: their row, history, queued mail and outbox copies; only a keyed hash
    stays, so no sign-up or import brings them back. True when they were a reader."""
    email = normalise_email(address)
    reader_id = store.erase(email, now=now, source="cli")
    if reader_id is None:
        return False
    if config.outbox_dir.is_dir():
        for copy in config.outbox_dir.glob(f"*/{reader_id:08d}*.eml"):
            copy.unlink(missing_ok=True)
    return True


# --- import and export --------------------------------------------------------------------------


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # suppressed or unsubscribed


def import_csv(
    store: Store, path: Path, *, known_sectors: Sequence[str], now: datetime
) -> ImportReport:
    """Import ``email,name,sectors`` rows (UTF-8, with or without BOM; sectors split by ``;``
    or spaces). Known readers are updated, never duplicated; nobody who unsubscribed or was
    erased comes back; every bad line is reported with its number and reason.
    """
    report = ImportReport()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubscriberError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
            hint="Save the file as UTF-8 CSV.",
        ) from None
    known = store.subscriber_index()
    suppressed = store.suppressed_hashes()
    known_set = set(known_sectors)
    new: dict[str, dict[str, object]] = {}
    changed: list[dict[str, object]] = []
    seen: set[str] = set()
    reader = csv.reader(io.StringIO(text))
    first = True
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a field past csv's own limit, a stray quote, a NUL...
            report.rejected.append((reader.line_num, f"not a readable CSV line ({exc})"))
            continue
        number = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if first and row[0].strip().lower() in {"email", "e-mail", "address"}:
            first = False
            continue  # the header
        first = False
        try:
            if any(len(cell) > MAX_CELL for cell in row):
                raise SubscriberError(f"a field is longer than {MAX_CELL:,} characters")
            email = normalise_email(row[0])
            name = clean_name(row[1] if len(row) > 1 else "")
            raw = (row[2] if len(row) > 2 else "").replace(";", " ").replace(",", " ").split()
            unknown = [s for s in raw if s not in known_set]
            if unknown:
                raise SubscriberError(f"unknown sector {unknown[0]!r}")
            sectors = json.dumps(list(dict.fromkeys(raw)))
        except SubscriberError as exc:
            report.rejected.append((number, exc.message))
            continue
        if email in seen:
            report.rejected.append((number, f"{email} appears twice in the file"))
            continue
        seen.add(email)
        if store.address_key(email) in suppressed or email_hash(email) in suppressed:
            report.skipped.append((number, f"{email} was erased; it is never imported again"))
            continue
        if email in known:
            row_id, old_name, old_sectors, status = known[email]
            if status == "unsubscribed":
                report.skipped.append((number, f"{email} unsubscribed; not re-subscribed"))
            elif (old_name, old_sectors) == (name, sectors):
                report.unchanged += 1
            else:
                changed.append(
                    {"row_id": row_id, "name": name, "sectors": sectors, "updated_at": now}
                )
                known[email] = (row_id, name, sectors, status)
            continue
        new[email] = {
            "email": email,
            "name": name,
            "sectors": sectors,
            "status": "confirmed",
            "token": new_token(),
            "created_at": now,
            "updated_at": now,
        }
    store.bulk_import(list(new.values()), changed)
    report.added, report.updated = len(new), len(changed)
    if new:
        index = store.subscriber_index()
        imported = [
            Subscriber(index[e][0], e, str(v["name"]), (), "confirmed") for e, v in new.items()
        ]
        store.add_events(
            ((s, "import", {}) for s in imported), now=now, source=f"import {path.name}"
        )
    return report


def export_csv(store: Store, out: TextIO, *, status: str | None = None) -> int:
    """Write ``email,name,sectors,status`` rows; returns how many."""
    writer = csv.writer(out)
    writer.writerow(["email", "name", "sectors", "status"])
    readers = store.subscriber_list(status=status)
    for r in readers:
        writer.writerow([_cell(r.email), _cell(r.name), " ".join(r.sectors), r.status])
    return len(readers)


def _cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading '."""
    return "'" + value if value[:1] in FORMULA_STARTS else value
