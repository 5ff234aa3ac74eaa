"""Provider events → readers: what SendGrid's Event Webhook and a bounce mailbox report, read
into ``ProviderEvent`` and applied to the readers they are about.

Events are stored first (``Store.record_events``, once each by the provider's id, so a retried
batch changes nothing) and applied afterwards by ``apply_events``:

- a hard bounce (or a drop for a bounced or invalid address) sets the reader ``bounced`` and
  suppresses the address; ``bounces.soft_limit`` soft bounces within ``bounces.soft_days``
  days set the reader ``bounced`` too (not suppressed: a full mailbox may empty again);
- a spam report unsubscribes the reader and suppresses the address as a complaint;
- an unsubscribe through the provider unsubscribes the reader;
- deliveries, opens and clicks are only counted (``stats``).

Every change of a reader is a consent event with its source and the provider's event id.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import mailbox
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

from flufl.bounce import all_failures

from newsletter.config import Config
from newsletter.delivery.mailers.message import reader_tag
from newsletter.errors import NewsletterError
from newsletter.models import (
    Channel,
    ConsentKind,
    EventKind,
    Source,
    SubscriberStatus,
    SuppressionReason,
)
from newsletter.records import ProviderEvent
from newsletter.store import Store

SENDGRID = str(Channel.SENDGRID)  # the source of the Event Webhook's events

# SendGrid's event types (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events)
_SENDGRID_KINDS = {
    "delivered": EventKind.DELIVERED,
    "deferred": EventKind.SOFT_BOUNCE,
    "spamreport": EventKind.COMPLAINT,
    "unsubscribe": EventKind.UNSUBSCRIBE,
    "group_unsubscribe": EventKind.UNSUBSCRIBE,
    "open": EventKind.OPEN,
    "click": EventKind.CLICK,
}
# why SendGrid dropped a message, and what that says about the address
_DROP_REASONS = {
    "bounced address": EventKind.BOUNCE,
    "invalid": EventKind.BOUNCE,
    "spam reporting address": EventKind.COMPLAINT,
    "unsubscribed address": EventKind.UNSUBSCRIBE,
}


@dataclass(frozen=True, slots=True)
class Applied:
    """What one ``apply_events`` run did."""

    events: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    complaints: int = 0


def sendgrid_events(batch: object, *, now: datetime) -> tuple[list[ProviderEvent], int]:
    """A webhook body (a JSON array of event objects) as events; (events, entries skipped).
    Unknown event types are kept as ``other``; an entry that is not an object, or names no
    event, is skipped."""
    if not isinstance(batch, list):
        raise ValueError("the body is not a JSON array of events")
    out, skipped = [], 0
    for entry in batch:
        if not isinstance(entry, dict) or not entry.get("event"):
            skipped += 1
            continue
        out.append(_sendgrid_event(entry, now))
    return out, skipped


def _sendgrid_event(entry: Mapping[str, Any], now: datetime) -> ProviderEvent:
    kind_name = str(entry.get("event", ""))
    reason = str(entry.get("reason") or entry.get("response") or "")
    if kind_name == "bounce":
        soft = str(entry.get("type", "")) == "blocked" or str(entry.get("status", "")).startswith(
            "4"
        )
        kind = EventKind.SOFT_BOUNCE if soft else EventKind.BOUNCE
    elif kind_name == "dropped":
        kind = _DROP_REASONS.get(reason.strip().lower(), EventKind.OTHER)
    else:
        kind = _SENDGRID_KINDS.get(kind_name, EventKind.OTHER)
    event_id = str(entry.get("sg_event_id") or "")
    if not event_id:  # an id of our own, the same however often the entry is posted
        event_id = "h:" + hashlib.sha256(repr(sorted(entry.items())).encode()).hexdigest()[:40]
    return ProviderEvent(
        event_id=event_id,
        kind=kind,
        at=_when(entry.get("timestamp"), now),
        email=str(entry.get("email") or "")[:320],
        edition_id=_number(entry.get("edition_id")),
        subscriber_id=_number(entry.get("subscriber_id")),
        url=str(entry.get("url") or "") if kind == EventKind.CLICK else "",
        reason=reason,
        source=SENDGRID,
    )


def _number(value: object) -> int | None:
    """A custom_args id (SendGrid sends them back as strings); 0 and junk are None."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 0 < number < 2**62 else None


def _when(value: object, now: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (ValueError, OverflowError, OSError):
        return now


def with_readers(
    store: Store, found: list[ProviderEvent], *, by_address: bool = True
) -> list[ProviderEvent]:
    """Each event's reader. ``by_address`` (SendGrid's events: the address it sent to, ours):
    the address decides, and our id in the event is kept only when it is that reader's. Else
    (a bounce mailbox, where a forwarder may have rewritten the address) our id decides, and
    the address only when there is none. Either way an event about an edition keeps a reader
    only if the edition went to them: an erased reader's id may have gone to a new reader, and
    a late complaint must not land on them. An address no reader has names nobody."""
    said = {e.email.strip() for e in found if e.email.strip()}
    # stored addresses are lower-cased, but for an unusual one's part before the @
    known = store.readers.subscriber_index(sorted(said | {a.lower() for a in said}))
    named = []
    for e in found:
        address = e.email.strip()
        reader = (known.get(address) or known.get(address.lower())) if address else None
        if address and (by_address or e.subscriber_id is None):
            e = replace(e, subscriber_id=None if reader is None else reader.id)
        named.append(e)
    pairs = [(e.edition_id, e.subscriber_id) for e in named if e.edition_id and e.subscriber_id]
    unsent = store.events.unsent_pairs(pairs) if pairs else set()
    return [
        replace(e, subscriber_id=None) if (e.edition_id, e.subscriber_id) in unsent else e
        for e in named
    ]


# --- applying ------------------------------------------------------------------------------


def apply_events(config: Config, store: Store, *, now: datetime, limit: int = 2000) -> Applied:
    """Apply every stored event not applied yet to its reader; returns what changed."""
    total = Applied()
    while pending := store.events.pending_events(limit=limit):
        done = Applied(events=len(pending))
        for stored in pending:
            done = _merge(done, _apply(config, store, stored.event, now=now))
        store.events.mark_applied([stored.row_id for stored in pending], now=now)
        total = _merge(total, done)
    return total


def _merge(a: Applied, b: Applied) -> Applied:
    return Applied(
        a.events + b.events,
        a.bounced + b.bounced,
        a.unsubscribed + b.unsubscribed,
        a.complaints + b.complaints,
    )


def _apply(config: Config, store: Store, event: ProviderEvent, *, now: datetime) -> Applied:
    if event.kind not in (
        EventKind.BOUNCE,
        EventKind.SOFT_BOUNCE,
        EventKind.COMPLAINT,
        EventKind.UNSUBSCRIBE,
    ):
        return Applied()  # counted by `stats`, nothing to change
    reader = (
        None if event.subscriber_id is None else store.readers.subscriber_by_id(event.subscriber_id)
    )
    if reader is None:
        return Applied()
    said = Source.parse(event.source)  # who reported it, with the provider's event id
    source = Source(said.channel, f"{said.detail} event {event.event_id}".strip()[:200])
    details = {"reason": event.reason[:300], "edition_id": event.edition_id}
    if event.kind == EventKind.BOUNCE:
        store.readers.suppress(reader.email, SuppressionReason.HARD_BOUNCE, now=now)
        if reader.status == SubscriberStatus.BOUNCED:
            return Applied()
        store.readers.update_subscriber(reader.id, now=now, status=SubscriberStatus.BOUNCED)
        store.readers.add_event(reader, ConsentKind.BOUNCE, now=now, source=source, details=details)
        return Applied(bounced=1)
    if event.kind == EventKind.SOFT_BOUNCE:
        rules = config.file.delivery.bounces
        since = event.at - timedelta(days=rules.soft_days)
        if reader.status != SubscriberStatus.CONFIRMED:
            return Applied()
        count = store.events.soft_bounces(reader.id, since=since, until=event.at)
        if count < rules.soft_limit:
            return Applied()
        store.readers.update_subscriber(reader.id, now=now, status=SubscriberStatus.BOUNCED)
        details["soft_bounces"] = count
        store.readers.add_event(
            reader, ConsentKind.SOFT_BOUNCE, now=now, source=source, details=details
        )
        return Applied(bounced=1)
    complaint = event.kind == EventKind.COMPLAINT
    if complaint:
        store.readers.suppress(reader.email, SuppressionReason.COMPLAINED, now=now)
    elif _came_back(store, reader.id, since=event.at):
        return Applied()  # the newest action wins: a "Subscribe again" after it stands
    if reader.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        return Applied(complaints=int(complaint))
    store.readers.update_subscriber(reader.id, now=now, status=SubscriberStatus.UNSUBSCRIBED)
    kind = ConsentKind.COMPLAINT if complaint else ConsentKind.UNSUBSCRIBE
    store.readers.add_event(reader, kind, now=now, source=source, details=details)
    return Applied(unsubscribed=1, complaints=int(complaint))


def _came_back(store: Store, reader_id: int, *, since: datetime) -> bool:
    """Whether the reader signed up, confirmed or subscribed again at or after ``since`` (an
    unsubscribe applied seconds after it was asked, by this worker, or one a provider reports
    late)."""
    back = (ConsentKind.SIGNUP, ConsentKind.CONFIRM, ConsentKind.RESUBSCRIBE)
    return any(
        e.kind in back and e.at is not None and e.at >= since
        for e in store.readers.events_of(reader_id)
    )


# --- bounce mailboxes --------------------------------------------------------------------------


class MailboxError(NewsletterError):
    """A bounce mailbox that cannot be read."""


def read_mailbox(path: Path) -> Iterator[tuple[str, Message]]:
    """Each message of a Maildir (a folder with ``cur``/``new``) or an mbox file, with a
    name for errors; ``MailboxError`` when the path is neither."""
    if path.is_dir():
        if not (path / "new").is_dir() and not (path / "cur").is_dir():
            raise MailboxError(
                f"{path} is a folder but not a Maildir (no cur/ or new/ in it)",
                hint="Give a Maildir folder or an mbox file.",
            )
        box: mailbox.Mailbox[Any] = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        kind = _file_kind(path)
        if kind == "message":  # one message saved from a mail client (.eml)
            data = path.read_bytes()
            yield path.name, email.message_from_bytes(data, policy=email.policy.compat32)
            return
        if kind != "mbox":
            raise MailboxError(
                f"{path} is not an mbox file, a Maildir or one saved message: it starts with "
                'neither "From " nor a mail header',
                hint="Give a Maildir folder, an mbox file or a saved message (.eml).",
            )
        box = mailbox.mbox(path, create=False)
    else:
        raise MailboxError(f"{path} does not exist", hint="Give a Maildir folder or an mbox file.")
    try:
        for key in box.iterkeys():
            try:
                data = box.get_bytes(key)
            except (OSError, KeyError):
                continue  # taken by another reader of the box meanwhile
            yield f"{path.name}/{key}", email.message_from_bytes(data, policy=email.policy.compat32)
    finally:
        box.close()


_HEADER = re.compile(rb"^[!-9;-~]+:")  # a mail header's name, then a colon (RFC 5322)


def _file_kind(path: Path) -> str:
    """ "mbox" (empty too), "message" (it starts with a header), or "other"."""
    with path.open("rb") as file:
        start = file.read(1024).lstrip(b"\r\n")
    if not start or start.startswith(b"From "):
        return "mbox"
    return "message" if _HEADER.match(start) else "other"


# no edition: transactional; ".m" and the reader's tag (``reader_tag``) since it was signed
_OUR_MESSAGE_ID = re.compile(r"\.(?:e(\d+)\.)?s(\d+)(?:\.m([0-9a-f]{12}))?@")


def bounce_events(
    message: Message,
    *,
    name: str,
    now: datetime,
    verp: re.Pattern[str] | None = None,
    key: bytes = b"",
) -> list[ProviderEvent]:
    """The failures a delivery status notification reports (found by flufl.bounce, the
    detectors GNU Mailman uses): one event per address, permanent ones as bounces. Our
    Message-ID in the returned headers names the edition and reader, and a VERP address in
    the notification's To the reader, each believed only when signed with ``key``
    (``reader_tag``: anyone can write to a bounce mailbox); else the address decides."""
    temporary, permanent = all_failures(message)
    edition_id = subscriber_id = None
    found = _OUR_MESSAGE_ID.search(_returned_headers(message))
    if found and _signed(key, int(found[1] or 0), int(found[2]), found[3]):
        edition_id, subscriber_id = int(found[1] or 0) or None, int(found[2]) or None
    if subscriber_id is None and verp is not None:
        to = verp.search(str(message.get("To", "")) + " " + str(message.get("Delivered-To", "")))
        subscriber_id = int(to[1]) if to and _signed(key, 0, int(to[1]), to[2]) else None
    report = str(message.get("Message-ID", "")) or hashlib.sha256(message.as_bytes()).hexdigest()
    out = []
    for kind, addresses in ((EventKind.BOUNCE, permanent), (EventKind.SOFT_BOUNCE, temporary)):
        for raw in sorted(addresses):
            address = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            digest = hashlib.sha256(f"{report}\0{address}".encode()).hexdigest()[:40]
            out.append(
                ProviderEvent(
                    event_id=f"dsn:{digest}",
                    kind=kind,
                    at=now,
                    email=address,
                    edition_id=edition_id,
                    subscriber_id=subscriber_id if len(permanent | temporary) == 1 else None,
                    reason=str(message.get("Subject", ""))[:300],
                    source=str(Source(Channel.MAILBOX, name))[:100],
                )
            )
    return out


def _signed(key: bytes, edition_id: int, subscriber_id: int, tag: str | None) -> bool:
    return bool(key and tag) and hmac.compare_digest(
        str(tag), reader_tag(key, edition_id, subscriber_id)
    )


def _returned_headers(message: Message) -> str:
    """The headers of the message that bounced, as the notification returns them."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return str(inner[0].get("Message-ID", ""))
    return ""


def verp_pattern(return_path: str | None) -> re.Pattern[str] | None:
    """The pattern that finds a reader's id, and its tag, in a VERP return path
    (``bounces+{id}@x``, the id sent as ``17-<tag>``)."""
    if not return_path or "{id}" not in return_path:
        return None
    reader = r"(\d+)(?:-([0-9a-f]{12}))?"
    return re.compile(re.escape(return_path).replace(re.escape("{id}"), reader), re.I)


def import_bounces(
    config: Config, store: Store, messages: Iterable[tuple[str, Message]], *, now: datetime
) -> tuple[int, int, Applied, list[str]]:
    """Store and apply the failures in ``messages``: (messages read, new events, what
    applying them changed, problems naming the message). A message that is no bounce is
    passed over."""
    verp = verp_pattern(config.file.delivery.smtp.return_path)
    key = config.privacy_key()
    read, stored, problems = 0, 0, []
    for name, message in messages:
        read += 1
        try:
            found = bounce_events(message, name=name, now=now, verp=verp, key=key)
        except Exception as exc:  # a detector's crash on one odd message must not stop the rest
            problems.append(f"{name}: cannot be read as a bounce: {exc}")
            continue
        if found:
            stored += store.events.record_events(
                with_readers(store, found, by_address=False), now=now
            )
    return read, stored, apply_events(config, store, now=now), problems
