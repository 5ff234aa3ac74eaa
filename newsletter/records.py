"""What the store answers with: frozen records, never rows, tuples or JSON; and an import's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from newsletter.models import (
    AuditAction,
    ConsentKind,
    DeliveryStatus,
    Edition,
    EditionKind,
    EditionStatus,
    EditorRole,
    EventKind,
    FeedStatus,
    MailKind,
    MailStatus,
    Source,
    Story,
    Subscriber,
    SubscriberStatus,
)
from newsletter.models.readers import DEFAULT_SLOT, Slot


@dataclass(frozen=True, slots=True)
class EditionRef:
    """A stored edition's id and status."""

    id: int
    edition_date: date
    status: EditionStatus


@dataclass(frozen=True, slots=True)
class StoredEdition:
    """A stored edition, as frozen, with its id and status."""

    id: int
    edition: Edition
    status: EditionStatus
    built_at: datetime | None = None  # when it was built (and, once fixed, frozen)


@dataclass(frozen=True, slots=True)
class EditionSummary:
    """A recent edition and its deliveries counted by status (``newsletter status``)."""

    edition_date: date
    status: EditionStatus
    counts: Mapping[DeliveryStatus, int]
    kind: EditionKind = EditionKind.DAILY


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One reader's row in an edition's send ledger."""

    email: str
    status: DeliveryStatus
    attempts: int


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One entry of a reader's consent history."""

    kind: ConsentKind
    source: Source
    wording: str
    details: Mapping[str, object]
    at: datetime | None = None  # when it happened


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a scheduler lock (``run:collect``, ``run:send``), since when, last beat when."""

    name: str
    owner: str
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class LockAnswer:
    """Whether the lock was taken, and who holds it since when (None: just now, by a race)."""

    taken: bool
    holder: str
    since: datetime | None


@dataclass(frozen=True, slots=True)
class NewReader:
    """A reader added in bulk (an import), with their own token; confirmed unless it says not."""

    email: str  # normalised
    name: str
    sectors: tuple[str, ...]
    token: str
    status: SubscriberStatus = SubscriberStatus.CONFIRMED
    slot: Slot = DEFAULT_SLOT
    watchlist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KnownReader:
    """What an import compares a row with: the stored reader of that address."""

    id: int
    name: str
    sectors: tuple[str, ...]
    status: SubscriberStatus
    slot: Slot = DEFAULT_SLOT
    watchlist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReaderChange:
    """A known reader's new name, sectors, slot and watchlist, from an import."""

    id: int
    name: str
    sectors: tuple[str, ...]
    slot: Slot = DEFAULT_SLOT
    watchlist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JudgedStory:
    """A stored story, and whether its sectors were judged under the current rules."""

    story: Story
    judged: bool


@dataclass(frozen=True, slots=True)
class SavedReader:
    """A reader as stored by an add or update, and whether the add created them."""

    reader: Subscriber
    created: bool


@dataclass(frozen=True, slots=True)
class StoredCounts:
    """What storing a feed's stories did."""

    new: int
    updated: int


@dataclass(frozen=True, slots=True)
class StoryClicks:
    """One story of an edition and how many readers clicked it."""

    url: str
    title: str
    sector: str  # the slug of the section it was in ("" when it was in none)
    clicks: int


@dataclass(frozen=True, slots=True)
class EditionStats:
    """What happened to one edition: counts of readers, each counted once per kind."""

    edition_date: date
    edition_id: int
    kind: EditionKind  # a date may have a weekly edition beside its daily one
    sent: int
    delivered: int
    bounced: int
    complaints: int
    unsubscribes: int
    opens: int  # unique; inflated by Apple Mail Privacy Protection, which opens every email
    clicks: int  # unique readers who clicked anything
    stories: tuple[StoryClicks, ...] = ()  # most clicked first
    sector_clicks: tuple[tuple[str, int], ...] = ()  # (slug, clicks), most first

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


@dataclass(frozen=True, slots=True)
class QueuedSignup:
    """A sign-up the web took and queued, with the form's checked values."""

    id: int
    email: str  # normalised
    name: str  # cleaned
    sectors: tuple[str, ...]
    source: Source  # web 203.0.113.7
    at: datetime  # when the reader signed up
    claim: str | None = None  # the worker that took it, and when (store/claims.py)
    claimed_at: datetime | None = None
    slot: Slot = DEFAULT_SLOT  # the zone and hour chosen on the form


@dataclass(frozen=True, slots=True)
class Claim:
    """One ledger row a sender claimed: its delivery id, and the reader it is for."""

    delivery_id: int
    reader: Subscriber


@dataclass(frozen=True, slots=True)
class TextToJudge:
    """A stored story whose language is not judged yet."""

    id: str
    title: str
    summary: str
    declared: str  # the feed's declared language, or ""


@dataclass(frozen=True, slots=True)
class PageToFetch:
    """A stored story whose teaser may come from its article page."""

    id: str
    url: str
    title: str
    summary: str
    feed_url: str


@dataclass(frozen=True, slots=True)
class StoredModel:
    """The newest trained sector model: its bytes, how many examples it learnt from, its report."""

    id: int
    created_at: datetime
    examples: int
    model: bytes
    report: str


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A reader whose copy of an edition failed, and why."""

    email: str
    error: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One transactional email waiting to go (a confirmation), with the sign-up's choice."""

    id: int
    subscriber_id: int | None  # None: an editor's link (``editor_link_id``)
    kind: MailKind
    name: str
    sectors: tuple[str, ...]
    status: MailStatus
    attempts: int
    created_at: datetime
    claim: str | None = None  # the worker that took it, and when (store/claims.py)
    claimed_at: datetime | None = None
    editor_link_id: int | None = None  # the one-time link an ``EDITOR_LINK`` email carries
    slot: Slot = DEFAULT_SLOT  # a confirmation's: the zone and hour chosen at sign-up


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """One feed as ``newsletter status`` shows it."""

    url: str
    name: str
    status: FeedStatus
    current_url: str | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_status: int | None
    last_fetched: datetime | None
    moved_at: datetime | None
    stories_last_day: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A provider event as stored, waiting to be applied: its row, and the event."""

    row_id: int
    event: ProviderEvent


@dataclass(frozen=True, slots=True)
class Label:
    """A story labelled with its sector (by the editor), an example for the sector model."""

    title: str
    summary: str
    url: str
    sector: str
    source: str = "editor"
    story_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredStoryline:
    """A storyline editions showed: its first and latest story, and the edition last showing it."""

    id: int
    first_story_id: str
    first_at: datetime
    latest_story_id: str
    latest_at: datetime
    outlets: int
    last_edition_id: int | None


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers between fetches of one feed."""

    current_url: str | None = None  # where a permanent redirect led; None: the configured URL
    etag: str | None = None
    last_modified: str | None = None
    status: FeedStatus = FeedStatus.ACTIVE
    retry_after: datetime | None = None  # the server asked not to be fetched before


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One thing a mail provider (or a bounce mailbox) reported about one email."""

    event_id: str  # the provider's id (sg_event_id), or one derived from the report
    kind: EventKind
    at: datetime  # when it happened, UTC
    email: str = ""  # the reader's address as the provider saw it
    edition_id: int | None = None  # from our custom_args; None for transactional mail
    subscriber_id: int | None = None  # from our custom_args; else found by address
    url: str = ""  # the link clicked
    reason: str = ""  # the provider's words for a bounce or drop
    source: str = ""  # who reported it: "sendgrid", "bounce mailbox NAME"


@dataclass(frozen=True, slots=True)
class Editor:
    """An account of the desk. Its password's hash stays in the store (``password_hash``)."""

    id: int
    email: str  # normalised
    name: str
    role: EditorRole
    disabled: bool
    session_version: int  # bumped when disabled, removed or given a new password
    has_password: bool
    created_at: datetime
    updated_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == EditorRole.ADMIN


@dataclass(frozen=True, slots=True)
class EditorLink:
    """A one-time set-password link (its token is ``EditorStore.link_token``)."""

    id: int
    editor_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """What an action of the desk was done to: ``AuditTarget("edition", "2026-11-25")``."""

    kind: str = ""  # editor, edition, reader, feed, story; "": the desk itself
    id: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the desk's audit log: who (id and address as they were), what, to what."""

    id: int
    at: datetime
    editor_id: int | None  # None: nobody signed in (a refused sign-in names the address tried)
    editor_email: str
    action: AuditAction
    target: AuditTarget
    detail: str
