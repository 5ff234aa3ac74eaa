"""The subscriber life cycle: sign-up with double opt-in, confirm, preferences, unsubscribe,
erasure. Every change is recorded as a consent event. (CSV import and export: ``roster``.)
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from newsletter.config import Config
from newsletter.config.suggest import did_you_mean
from newsletter.errors import SubscriberError
from newsletter.models import (
    Channel,
    ConsentKind,
    EventKind,
    MailKind,
    Source,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from newsletter.models.readers import DEFAULT_SLOT, Slot
from newsletter.readers.addresses import MAX_EMAIL as MAX_EMAIL
from newsletter.readers.addresses import normalise_email as normalise_email
from newsletter.readers.timing import choices_of, watchlist_terms
from newsletter.records import ProviderEvent
from newsletter.store import Store
from newsletter.text import plain_name

MAX_NAME = 200  # characters, once cleaned
MAX_NAME_TYPED = 1000  # characters of a name as a form sends it, before cleaning
CONFIRMATION_INTERVAL = timedelta(hours=1)
CONFIRMATION = MailKind.CONFIRMATION  # the kind of queued email
CLI = Source(Channel.CLI)  # a change made from the shell


def consent_wording(publication: str) -> str:
    """The sentence shown next to the sign-up button, stored with each sign-up."""
    return (
        f"I want to receive {publication} by email each morning, with the sectors I chose. "
        "I can change them or unsubscribe at any time from a link in every email."
    )


def clean_name(name: str) -> str:
    """A name as it is kept: ``text.plain_name`` (encoded-words decoded, one printable line);
    ``SubscriberError`` only when it is still too long, or holds < or >."""
    shown = plain_name(name)
    if "<" in shown or ">" in shown:  # what an address looks like in a header: no look-alikes
        raise SubscriberError("a name cannot contain < or >", hint="Give a plain name.")
    if len(shown) > MAX_NAME:
        raise SubscriberError(f"a name is at most {MAX_NAME} characters", hint="Shorten it.")
    return shown


def check_sectors(sectors: Sequence[str], known: Sequence[str]) -> list[str]:
    unknown = [s for s in sectors if s not in known]
    if unknown:
        raise SubscriberError(
            f"unknown sector {', '.join(map(repr, unknown[:3]))}{did_you_mean(unknown[0], known)}",
            hint=f"Use the configured slugs: {', '.join(known)}.",
        )
    return list(dict.fromkeys(sectors))


def new_token() -> str:
    """An unguessable token (192 random bits) for a reader's links."""
    return secrets.token_urlsafe(24)


def new_tokens(count: int) -> list[str]:
    """``count`` tokens in ``new_token``'s form, from two reads of the system's random source:
    the batch's tokens share their first 6 random bytes and each has 18 (144 bits) of its own,
    so they are as unguessable as any 144-bit secret while sitting together in the token index
    (a chunk of an import writes a few of its pages, not one page per reader all over it)."""
    head = secrets.token_bytes(6)
    raw = secrets.token_bytes(18 * count)
    return [
        base64.urlsafe_b64encode(head + raw[i : i + 18]).decode() for i in range(0, len(raw), 18)
    ]


# why an address is suppressed, in the words a publisher reads (import reports, `add`)
_SUPPRESSED_BECAUSE: dict[str, str] = {
    SuppressionReason.ERASED: "was erased (`subscribers remove`)",
    SuppressionReason.COMPLAINED: "reported an edition as spam",
    SuppressionReason.HARD_BOUNCE: "hard-bounced (the address does not exist or refuses mail)",
}


def suppressed_because(reason: str) -> str:
    """What happened to a suppressed address, for a sentence after the address."""
    return _SUPPRESSED_BECAUSE.get(reason, "is suppressed")  # a StrEnum key is its string


def add_subscriber(
    store: Store,
    address: str,
    *,
    name: str | None = None,
    sectors: Sequence[str] | None = None,
    known_sectors: Sequence[str],
    status: SubscriberStatus = SubscriberStatus.CONFIRMED,
    now: datetime,
    source: Source = CLI,
    slot: Slot | None = None,
    watchlist: Sequence[str] | None = None,
) -> tuple[Subscriber, bool]:
    """Add a reader (no name and every sector unless given), or update a known one: what is
    given replaces its value, the rest stays; (reader, created). Everything is checked before
    anything is written: a refused value leaves no reader added or half-updated."""
    email = normalise_email(address)
    reason = store.readers.suppression_reason(email)
    if reason is not None:
        raise SubscriberError(
            f"{email} {suppressed_because(reason)} and cannot be added again",
            hint="A suppressed address stays suppressed: ask the reader for another address.",
        )
    terms = watchlist_terms(watchlist) if watchlist is not None else None
    saved = store.readers.upsert_subscriber(
        email,
        name=clean_name(name) if name is not None else None,
        sectors=check_sectors(sectors, known_sectors) if sectors is not None else None,
        status=status,
        token=new_token(),
        now=now,
    )
    reader = saved.reader
    if slot is not None or terms is not None:
        store.readers.update_subscriber(reader.id, now=now, slot=slot, watchlist=terms)
        reader = store.readers.subscriber_by_id(reader.id) or reader
    kind = ConsentKind.ADDED if saved.created else ConsentKind.UPDATED
    store.readers.add_event(reader, kind, now=now, source=source, details=choices_of(reader))
    return reader, saved.created


# --- the web's life cycle ----------------------------------------------------------------------


def request_sign_up(
    config: Config,
    store: Store,
    *,
    address: str,
    name: str,
    sectors: Sequence[str],
    source: Source,
    now: datetime,
    slot: Slot = DEFAULT_SLOT,
) -> None:
    """Check a sign-up's form and queue it; ``SubscriberError`` for the reader to correct.

    The same work whoever the address belongs to (one INSERT), so the answer's timing tells
    nobody whether it is new, subscribed, pending or suppressed: that is looked at afterwards,
    by ``outgoing.take_sign_ups`` in the web process's worker.
    """
    email = normalise_email(address)
    name = clean_name(name)
    chosen = check_sectors(sectors, config.sector_slugs)
    store.outgoing.queue_signup(email, name=name, sectors=chosen, source=source, now=now, slot=slot)


def _tell_already_subscribed(store: Store, reader: Subscriber, *, now: datetime) -> str:
    """A confirmed address signed up again: an email says so (at most one an hour); the page
    looks the same as for a new address."""
    last = store.outgoing.last_mail_sent_at(reader.id, kind=MailKind.ALREADY_SUBSCRIBED)
    if last is not None and now - last < CONFIRMATION_INTERVAL:
        return "already confirmed; told less than an hour ago"
    store.outgoing.queue_mail(
        reader.id,
        kind=MailKind.ALREADY_SUBSCRIBED,
        name=reader.name,
        sectors=reader.sectors,
        now=now,
    )
    return "already confirmed; told so by email"


def sign_up(
    config: Config,
    store: Store,
    *,
    address: str,
    name: str,
    sectors: Sequence[str],
    source: Source,
    now: datetime,
    slot: Slot = DEFAULT_SLOT,
) -> str:
    """Record a sign-up and queue a confirmation email; what happened, for logs only. The web
    calls it through its queue (``request_sign_up``, then ``outgoing.take_sign_ups``).

    Nothing here waits on a mail provider: the confirmation goes through the ``outgoing``
    queue. A known pending reader's name and sectors do not change now: the choice is kept with
    the queued email, and the newest one applies when the reader confirms. The caller shows the
    same page whatever happened, so nobody can learn who subscribed.
    """
    email = normalise_email(address)
    name = clean_name(name)
    chosen = check_sectors(sectors, config.sector_slugs)
    if store.readers.is_suppressed(email):
        return "suppressed"
    reader = store.readers.subscriber_by_email(email)
    if reader is not None and reader.status == SubscriberStatus.CONFIRMED:
        return _tell_already_subscribed(store, reader, now=now)
    renewed = False  # the reader's token replaced: the last confirmation's link is dead
    if reader is None:
        reader = store.readers.upsert_subscriber(
            email,
            name=name,
            sectors=chosen,
            status=SubscriberStatus.PENDING,
            token=new_token(),
            now=now,
        ).reader
    elif reader.status != SubscriberStatus.PENDING or confirmation_expired(
        config, store, reader, now
    ):  # a new token: links of old emails (an expired confirmation's too) stay dead
        pending = SubscriberStatus.PENDING
        store.readers.update_subscriber(reader.id, now=now, status=pending, token=new_token())
        renewed = True
    store.readers.add_event(
        reader,
        ConsentKind.SIGNUP,
        now=now,
        source=source,
        wording=consent_wording(config.publication.name),
        details={"sectors": chosen, "name": name}
        | ({"timezone": slot.timezone, "hour": slot.hour} if slot != DEFAULT_SLOT else {}),
    )
    # within the hour of the last confirmation no other goes while its link still works
    last = store.outgoing.last_mail_sent_at(reader.id, kind=CONFIRMATION)
    held = not renewed and last is not None and now - last < CONFIRMATION_INTERVAL
    store.outgoing.queue_mail(
        reader.id, kind=CONFIRMATION, name=name, sectors=chosen, now=now, held=held, slot=slot
    )
    return "choice kept; a confirmation went less than an hour ago" if held else "queued"


def confirmation_expired(config: Config, store: Store, reader: Subscriber, now: datetime) -> bool:
    """Whether a pending reader's newest confirmation link is past ``confirm_link_days``."""
    if reader.status != SubscriberStatus.PENDING:
        return False
    asked = store.outgoing.last_mail_sent_at(reader.id, kind=CONFIRMATION)
    if asked is None:
        return False
    return now - asked > timedelta(days=config.file.signup.confirm_link_days)


def renew_confirmation(store: Store, reader: Subscriber, *, now: datetime) -> None:
    """Queue a fresh confirmation link with the reader's newest choice: a new token, so that
    the expired link, wherever it went, stays dead."""
    store.readers.update_subscriber(reader.id, now=now, token=new_token())
    newest = store.outgoing.latest_mail(reader.id, kind=CONFIRMATION)
    name = newest.name if newest else reader.name
    sectors = newest.sectors if newest else reader.sectors
    store.outgoing.queue_mail(reader.id, kind=CONFIRMATION, name=name, sectors=sectors, now=now)


def reader_for(store: Store, token: str) -> Subscriber:
    reader = store.readers.subscriber_by_token(token)
    if reader is None:
        raise SubscriberError("unknown link", hint="Use the link from your latest email.")
    return reader


def confirm(store: Store, token: str, *, source: Source, now: datetime) -> Subscriber:
    """Confirm a pending reader; the newest choice of name and sectors from a sign-up applies
    now. A reader who unsubscribed or bounced stays so: an old confirmation link is no way back
    (``resubscribe`` is, with its own consent)."""
    reader = reader_for(store, token)
    if reader.status == SubscriberStatus.PENDING:
        newest = store.outgoing.latest_mail(reader.id, kind=CONFIRMATION)
        if newest is not None:
            store.readers.update_subscriber(
                reader.id,
                now=now,
                status=SubscriberStatus.CONFIRMED,
                name=newest.name,
                sectors=newest.sectors,
                slot=newest.slot if newest.slot != DEFAULT_SLOT else None,
            )
        else:
            store.readers.update_subscriber(reader.id, now=now, status=SubscriberStatus.CONFIRMED)
        store.readers.add_event(reader, ConsentKind.CONFIRM, now=now, source=source)
        confirmed = reader_for(store, token)
        store.outgoing.queue_mail(
            reader.id,
            kind=MailKind.WELCOME,
            name=confirmed.name,
            sectors=confirmed.sectors,
            now=now,
        )
        return confirmed
    return reader


def change_preferences(
    store: Store,
    token: str,
    *,
    name: str,
    sectors: Sequence[str],
    known_sectors: Sequence[str],
    source: Source,
    now: datetime,
    slot: Slot | None = None,
    watchlist: Sequence[str] | None = None,
) -> Subscriber:
    """A reader's new name and sectors (and, when given, delivery slot and watchlist)."""
    reader = reader_for(store, token)
    name = clean_name(name)
    chosen = check_sectors(sectors, known_sectors)
    terms = None if watchlist is None else watchlist_terms(watchlist)
    store.readers.update_subscriber(
        reader.id, now=now, name=name, sectors=chosen, slot=slot, watchlist=terms
    )
    changed = reader_for(store, token)
    store.readers.add_event(
        reader,
        ConsentKind.PREFERENCES,
        now=now,
        source=source,
        details=choices_of(changed) | {"name": name},
    )
    return changed


def unsubscribe(store: Store, token: str, *, source: Source, now: datetime) -> Subscriber:
    reader = reader_for(store, token)
    if reader.status != SubscriberStatus.UNSUBSCRIBED:
        store.readers.update_subscriber(reader.id, now=now, status=SubscriberStatus.UNSUBSCRIBED)
        store.readers.add_event(reader, ConsentKind.UNSUBSCRIBE, now=now, source=source)
        # counted against the last edition the reader got, as `stats` shows it
        left = ProviderEvent(
            event_id=f"web:{reader.id}:{now.isoformat()}",
            kind=EventKind.UNSUBSCRIBE,
            at=now,
            edition_id=store.ledger.last_edition_sent_to(reader.id),
            subscriber_id=reader.id,
            source=str(source.channel),
        )
        store.events.record_events([left], now=now)
    return reader_for(store, token)


def resubscribe(
    store: Store, token: str, *, publication: str, source: Source, now: datetime
) -> Subscriber:
    """An unsubscribed reader asks, from their own link, to get the newsletter again; or a
    bounced one, whose link shows their mailbox works again (a suppressed address cannot)."""
    reader = reader_for(store, token)
    if reader.status not in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        return reader
    if store.readers.is_suppressed(reader.email):
        raise SubscriberError(
            "this address cannot be subscribed again",
            hint="Write to the publisher if you want the newsletter again.",
        )
    store.readers.update_subscriber(reader.id, now=now, status=SubscriberStatus.CONFIRMED)
    store.readers.add_event(
        reader,
        ConsentKind.RESUBSCRIBE,
        now=now,
        source=source,
        details={"consent": consent_wording(publication)},
    )
    return reader_for(store, token)


def erase_person(
    config: Config, store: Store, address: str, *, now: datetime, source: Source = CLI
) -> bool:
    """Erase a person: their row, history, queued mail and outbox copies; only a keyed hash
    stays, so no sign-up or import brings them back. True when they were a reader."""
    email = normalise_email(address)
    store.outgoing.forget_signups(email)
    reader_id = store.readers.erase(email, now=now, source=source)
    if reader_id is None:
        return False
    if config.outbox_dir.is_dir():
        for copy in config.outbox_dir.glob(f"*/{reader_id:08d}*.eml"):
            copy.unlink(missing_ok=True)
    return True
