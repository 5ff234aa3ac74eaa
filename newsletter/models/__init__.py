"""The vocabulary every stage speaks: frozen dataclasses and enums, no third-party types (a
stage that talks to a library converts at its own edge)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from newsletter.models.readers import DEFAULT_SLOT as DEFAULT_SLOT
from newsletter.models.readers import MAX_WATCHLIST as MAX_WATCHLIST
from newsletter.models.readers import EditionKind as EditionKind
from newsletter.models.readers import Frequency as Frequency
from newsletter.models.readers import Slot as Slot
from newsletter.models.readers import Subscriber as Subscriber
from newsletter.models.readers import SubscriberStatus as SubscriberStatus


class EditionStatus(StrEnum):
    FROZEN = "frozen"  # built and stored: what goes out is fixed
    SENDING = "sending"
    SENT = "sent"

    @classmethod
    def fixed(cls) -> frozenset[EditionStatus]:
        """The statuses of an edition whose stories can no longer change."""
        return frozenset({cls.FROZEN, cls.SENDING, cls.SENT})


class FeedStatus(StrEnum):  # a feed in the store
    ACTIVE = "active"
    GONE = "gone"  # the server said 410: no longer fetched unless asked (--retry-gone)


class FetchOutcome(StrEnum):  # what one collection did with one feed
    OK = "ok"
    NOT_MODIFIED = "not-modified"  # the server said 304: nothing new
    FAILED = "failed"
    GONE = "gone"  # the server said 410: no longer fetched unless asked (--retry-gone)
    NOT_FETCHED = "not-fetched"  # the collection was stopped before this feed was done
    WAITING = "asked-to-wait"  # its server asked not to be fetched yet (Retry-After)


class SuppressionReason(StrEnum):
    ERASED = "erased"  # the person asked to be forgotten
    COMPLAINED = "complained"  # the reader reported an edition as spam
    HARD_BOUNCE = "hard-bounce"  # the address does not exist (or the provider refuses it)


class ConsentKind(StrEnum):
    """One entry of a reader's consent history: what happened to their subscription."""

    ADDED = "added"  # from the shell (`subscribers add`)
    UPDATED = "updated"  # name or sectors changed from the shell
    IMPORT = "import"  # a CSV import
    SIGNUP = "signup"  # the web form: asked to confirm
    CONFIRM = "confirm"
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"  # the reader's link, or the provider's
    RESUBSCRIBE = "resubscribe"
    BOUNCE = "bounce"  # the provider: the address is dead
    SOFT_BOUNCE = "soft-bounce"  # the provider: too many temporary failures
    COMPLAINT = "complaint"  # the provider: reported as spam
    ERASURE = "erasure"  # the person was forgotten (no link back to them is kept)


class Channel(StrEnum):
    """Where a change to a reader came from."""

    WEB = "web"  # a reader's page; the detail is the client's address
    CLI = "cli"
    IMPORT = "import"  # the detail is the file's name
    SENDGRID = "sendgrid"  # the Event Webhook
    MAILBOX = "mailbox"  # a bounce mailbox; the detail is its name
    DESK = "desk"  # the editor's desk; the detail is the editor's address


@dataclass(frozen=True, slots=True)
class Source:
    """Where a change came from (``Channel``) and its detail: ``web 203.0.113.7``."""

    channel: Channel
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.channel} {self.detail}".strip()

    @classmethod
    def parse(cls, text: str) -> Source:
        """A source stored as text, read back (unknown channels as the shell's)."""
        channel, _, detail = text.partition(" ")
        known = channel in Channel._value2member_map_
        return cls(Channel(channel) if known else Channel.CLI, detail)


class EventKind(StrEnum):
    """What a mail provider (or a bounce mailbox) said happened to one email."""

    DELIVERED = "delivered"
    BOUNCE = "bounce"  # a permanent failure: the address is dead
    SOFT_BOUNCE = "soft-bounce"  # a temporary failure (deferred, mailbox full, blocked)
    COMPLAINT = "complaint"  # the reader pressed "report spam"
    UNSUBSCRIBE = "unsubscribe"  # through the provider's own link or header handling
    OPEN = "open"
    CLICK = "click"
    OTHER = "other"  # processed, dropped for another reason, ...: stored, changes nothing


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class MailKind(StrEnum):
    """A transactional email readers (or the desk's editors) expect (``outgoing``)."""

    CONFIRMATION = "confirmation"  # double opt-in: the link that confirms a sign-up
    WELCOME = "welcome"  # after confirming: their sectors and the manage link
    ALREADY_SUBSCRIBED = "already-subscribed"  # a confirmed address signed up again
    EDITOR_LINK = "editor-link"  # an editor's one-time set-password link (``editor_links``)


class MailStatus(StrEnum):
    """A queued transactional email (``outgoing``)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"  # kept for the sign-up choice it carries; no email of its own


class EditorRole(StrEnum):
    """What an editor of the desk may do (``/desk``): an admin also manages the editors."""

    EDITOR = "editor"
    ADMIN = "admin"


class AuditAction(StrEnum):
    """What the desk's audit log records (``audit``): who did it, to what, when."""

    SIGN_IN = "sign-in"
    SIGN_IN_REFUSED = "sign-in-refused"  # a wrong password, a disabled account, over the limit
    SIGN_OUT = "sign-out"
    PASSWORD_SET = "password-set"  # noqa: S105 (a name): by the one-time link, or the shell
    LINK_ISSUED = "link-issued"  # a one-time set-password link made
    EDITOR_ADDED = "editor-added"
    EDITOR_DISABLED = "editor-disabled"
    EDITOR_ENABLED = "editor-enabled"
    EDITOR_REMOVED = "editor-removed"
    EDITION_CHANGED = "edition-changed"  # a pin, drop, move, note, subject or intro (detail)
    EDITION_APPROVED = "edition-approved"
    EDITION_APPROVAL_WITHDRAWN = "edition-approval-withdrawn"  # by hand, not by a change
    TEST_SENT = "test-sent"  # a test copy of the edition to the editor's own address
    FEED_RETRIED = "feed-retried"
    READER_ADDED = "reader-added"
    READER_UNSUBSCRIBED = "reader-unsubscribed"
    READER_ERASED = "reader-erased"
    READERS_IMPORTED = "readers-imported"  # the detail is the report's counts
    READERS_EXPORTED = "readers-exported"


@dataclass(frozen=True, slots=True)
class Sector:
    """A section of the digest, such as ``oil-gas``."""

    slug: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class FeedSource:
    """One configured feed. ``url`` is an http(s) URL or an absolute local file path."""

    name: str
    url: str  # as written in config.yaml: the feed's identity in the store
    location: str  # where to read it from: the URL, or the resolved local path
    sector: str | None = None  # optional sector hint
    weight: float = 1.0  # how much the editor trusts this feed; used in ranking
    fetch_teasers: bool = False  # take teasers from article pages when the feed's are thin
    sample: bool = False  # dated anew at each collect (``feeds[].sample``)


@dataclass(frozen=True, slots=True)
class SectorFit:
    """A sector a story fits and the classifier's confidence: 1 or more lets it lead."""

    sector: str  # slug
    confidence: float = math.inf  # sure: an editor's move, or an edition from before confidence


def sector_fits(sectors: Sequence[str], confidence: Sequence[float] = ()) -> tuple[SectorFit, ...]:
    """The records of a classifier's two lists (a sector without a confidence is sure)."""
    if len(confidence) == len(sectors):
        return tuple(map(SectorFit, sectors, confidence))
    sure = (*confidence, *[math.inf] * len(sectors))
    return tuple(SectorFit(s, c) for s, c in zip(sectors, sure, strict=False))


@dataclass(frozen=True, slots=True)
class Story:
    """One item from a feed, cleaned: plain-text summary, UTC times, http(s) link."""

    id: str  # stable: from the GUID, else the canonical link, else a hash of the text
    title: str
    url: str
    summary: str  # plain text, already sanitised
    source: str  # the feed's name
    published: datetime  # timezone-aware UTC
    feed_url: str = ""  # the configured feed it came from
    fits: tuple[SectorFit, ...] = ()  # the sectors it fits, best first
    also_in: tuple[str, ...] = ()  # other outlets that carried the same story (set by digest)
    language: str = ""  # ISO 639-1 code judged from the text (and the feed's declared language)
    storylines: tuple[int, ...] = ()  # the storylines it belongs to, by number (set by digest)
    # the other reports of its storyline, shown collapsed under it (set by digest)
    reports: tuple[Story, ...] = ()
    # a new development of a storyline an earlier edition carried: the id of a story it carried
    follows: str = ""
    # the stored cluster of same-news stories it was found in ("" until clustered); stories of
    # one cluster are not compared again
    cluster: str = ""
    sectors: tuple[str, ...] = field(init=False, repr=False, compare=False)  # of ``fits``

    def __post_init__(self) -> None:  # the slugs, best first, read far more often than set
        object.__setattr__(self, "sectors", tuple(f.sector for f in self.fits))

    @property
    def update(self) -> bool:
        """Whether it is a new development of a storyline shown before ("Update:")."""
        return bool(self.follows)

    @property
    def outlets(self) -> int:
        """How many distinct outlets carry it or its storyline."""
        names = {self.source, *self.also_in}
        for report in self.reports:
            names.update((report.source, *report.also_in))  # reports carry none of their own
        return len(names)


@dataclass(frozen=True, slots=True)
class Section:
    """One sector of an edition: its stories best first, and further headlines as "more"."""

    sector: Sector
    stories: tuple[Story, ...]
    more: tuple[Story, ...] = ()


@dataclass(frozen=True, slots=True)
class Sponsor:
    """The day's sponsor slot, as frozen with the edition (the link with its UTM parameters)."""

    title: str
    text: str
    cta_label: str
    url: str
    image_url: str = ""
    image_width: int = 0
    image_alt: str = ""
    after: str = ""  # the sector slug it follows; "": right after the top story


@dataclass(frozen=True, slots=True)
class Edition:
    """The day's issue, frozen once built. Each section holds every story that fits its sector,
    ranked; a story that fits two sectors is a candidate in both. ``digest.layout`` turns this
    into what one reader sees: each story once, in the reader's best-fitting chosen sector, at
    most ``per_sector`` per section."""

    publication: str
    edition_date: date
    sections: tuple[Section, ...]
    per_sector: int  # stories shown per section (``digest.per_sector``)
    note: str = ""  # the editor's note, shown above the sections
    pinned: tuple[str, ...] = ()  # ids of stories the editor pinned to the top of their sector
    per_storyline: int = 0  # of one storyline per section (``digest.per_storyline``; 0: any)
    sponsor: Sponsor | None = None
    brief_size: int = 0  # storylines in the brief that opens the email (``digest.brief``; 0: none)
    notes: tuple[tuple[str, str], ...] = ()  # (story id, the editor's "why it matters")
    written: tuple[tuple[str, str], ...] = ()  # (story id, summary): the writer's, checked
    intro: str = ""  # the writer's, about the stories of ``intro_covers``; none: the editor's
    intro_covers: tuple[str, ...] = ()
    subject: str = ""  # the editor's subject line; "": computed from the brief
    kind: EditionKind = EditionKind.DAILY

    @property
    def story_ids(self) -> frozenset[str]:
        return frozenset(story.id for section in self.sections for story in section.stories)


@dataclass(frozen=True, slots=True)
class Seen:
    """What earlier editions sent: a story matching any of these is not picked again."""

    ids: frozenset[str] = frozenset()
    urls: frozenset[str] = frozenset()
    headlines: tuple[str, ...] = ()  # normalised with ``classify.headline_key``
    stories: tuple[Story, ...] = ()  # the stories themselves, as sent: storylines continue


@dataclass(frozen=True, slots=True)
class Overrides:
    """The editor's choices for one day: pins, drops and a note."""

    note: str = ""
    pin: tuple[str, ...] = ()  # story ids or links, best first
    drop: tuple[str, ...] = ()  # story ids or links
    drop_feeds: tuple[str, ...] = ()  # feed names or URLs
    move: tuple[tuple[str, str], ...] = ()  # (story id or link, sector slug): the editor's call
    sponsor: Sponsor | None = None  # the day's own sponsor, instead of the configured one
    drop_sponsor: bool = False  # no sponsor that day
    notes: tuple[tuple[str, str], ...] = ()  # (story id or link, the editor's "why it matters")
    subject: str = ""  # the email's subject instead of the computed one
    intro: str = ""  # the editor's intro, instead of the writer's


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """The email for one combination of sectors."""

    subject: str
    html: str
    text: str
    preheader: str = ""
    trimmed: int = 0  # stories and headlines left out to stay under the size limit
    shown: tuple[tuple[str, int, int], ...] = ()  # (sector name, stories, more) as sent
    markers: str = ""  # the secret of its per-reader markers ("": nothing left to fill)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One reader of one batch (the reader's record as the store gave it), with the values
    that fill their copy's markers."""

    delivery_id: int
    reader: Subscriber
    values: Mapping[str, str]  # unsubscribe_url, preferences_url, greeting

    @property
    def subscriber_id(self) -> int:
        return self.reader.id

    @property
    def email(self) -> str:
        return self.reader.email

    @property
    def name(self) -> str:
        return self.reader.name


@dataclass(frozen=True, slots=True)
class Batch:
    """One mailer call: a variant of the edition for some of its readers. ``edition_id`` 0 is
    mail outside any edition (a transactional email, a test copy); ``dry_run`` sends nothing."""

    email: RenderedEmail
    recipients: tuple[Recipient, ...]
    edition_id: int
    edition_date: date
    dry_run: bool = False
    kind: MailKind | None = None  # the transactional email it is; None: the edition (or a test)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a mailer did with one batch: provider message ids, or errors, per delivery id."""

    sent: Mapping[int, str]  # delivery id → message id
    failed: Mapping[int, str]  # delivery id → error
    unsent: tuple[int, ...] = ()  # not tried (the provider went away): back to the queue
    stop_reason: str = ""  # why the mailer stopped before the end of the batch
    stopped: bool = False  # it was asked to stop: ``unsent`` were not tried, nothing went wrong


@dataclass(frozen=True, slots=True)
class SendReport:
    edition_date: date
    sent: int
    failed: int
    skipped: int
    already_sent: int
    seconds: float
    dry_run: bool = False
    stopped: bool = False  # a stop was asked for: the requests in flight were finished and recorded
    kind: EditionKind = EditionKind.DAILY  # the edition's: a day may have a weekly one too
