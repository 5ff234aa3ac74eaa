"""The SQLAlchemy tables. The schema itself is created and changed only by Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from newsletter.models import FeedStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, the same out, on every database: PostgreSQL keeps them
    as ``timestamp with time zone``; SQLite, which has no zones, as naive UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass a timezone-aware one")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


metadata = MetaData()

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),  # as configured: the feed's identity
    Column("current_url", Text, nullable=True),  # after a permanent redirect
    Column("name", Text, nullable=False),
    Column("sector_hint", String(64), nullable=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("status", String(16), nullable=False, default=FeedStatus.ACTIVE.value),  # FeedStatus
    Column("last_success", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UTCDateTime(), nullable=True),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("failing_since", UTCDateTime(), nullable=True),  # first failure after a success
    Column("last_status", Integer, nullable=True),  # HTTP status of the last fetch
    Column("last_fetched", UTCDateTime(), nullable=True),
    Column("moved_at", UTCDateTime(), nullable=True),  # when current_url was last changed
    Column("retry_after", UTCDateTime(), nullable=True),  # a 429's or 503's: not fetched before
)

stories = Table(
    "stories",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("published", UTCDateTime(), nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    Column("feed_language", String(8), nullable=True),  # as the feed declares it
    Column("language", String(8), nullable=True),  # judged from the text; NULL until judged
    Column("page_fetched_at", UTCDateTime(), nullable=True),  # the one fetch of its article page
    Column("page_teaser", Text, nullable=True),  # the lead taken from that page
    Column("page_error", Text, nullable=True),  # why no lead came from it
    # derived once and kept, so a build does not redo them: the sectors the rules (and model)
    # gave it, JSON [sectors, confidence], under the fingerprint of those rules; and the id of
    # the cluster of same-news stories it belongs to (that cluster's smallest story id)
    Column("judged_rules", String(16), nullable=True),
    Column("judged", Text, nullable=True),
    Column("cluster_id", String(32), nullable=True),
    Column("storyline_id", Integer, nullable=True),  # the storyline an edition showed it in
    Index("ix_stories_published", "published"),
    Index("ix_stories_url", "url"),
    Index("ix_stories_feed_published", "feed_id", "published"),
)

# Storylines editions showed: one developing story across outlets and days (two reports or
# more, or a new development of one shown before), with its first and latest story.
storylines = Table(
    "storylines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("first_story_id", String(32), nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("latest_story_id", String(32), nullable=False),
    Column("latest_at", UTCDateTime(), nullable=False),
    Column("outlets", Integer, nullable=False),  # the most outlets an edition showed it with
    Column("last_edition_id", Integer, nullable=True),  # the edition that last showed it
)

# Stories labelled with a sector: the editor's corrections, examples for the model, `rules check`.
labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("story_id", String(32), nullable=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("sector", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("story_id", "source", name="uq_labels_story_source"),
)

# The trained sector model (the second opinion), newest last.
sector_models = Table(
    "sector_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("examples", Integer, nullable=False),
    Column("model", LargeBinary, nullable=False),
    Column("report", Text, nullable=False),
)

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_date", Date, nullable=False),
    Column("kind", String(8), nullable=False, server_default="daily"),  # EditionKind
    Column("status", String(16), nullable=False),  # EditionStatus
    Column("built_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("snapshot", Text, nullable=False),  # the Edition as JSON, frozen once sending starts
    UniqueConstraint("edition_date", "kind", name="uq_editions_date_kind"),  # one of each a day
)

# The stories an edition carried (every candidate, "more" headlines included), so that a later
# edition never picks them, or a copy of them from another outlet, again.
edition_stories = Table(
    "edition_stories",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("story_id", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("headline", Text, nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # normalised
    Column("name", String(200), nullable=False),
    Column("sectors", Text, nullable=False),  # JSON list of slugs; [] = every sector
    Column("status", String(16), nullable=False),  # SubscriberStatus
    Column("token", String(64), nullable=False, unique=True),  # secret; revocable
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # when the reader gets the edition: a zone ("" = the schedule's), a local hour (None = the
    # schedule's send_at), daily or weekly (on ``weekday``, 0 = Monday)
    Column("timezone", String(64), nullable=False, server_default=""),
    Column("delivery_hour", Integer, nullable=True),
    Column("frequency", String(8), nullable=False, server_default="daily"),  # Frequency
    Column("weekday", Integer, nullable=True),
    Column("watchlist", Text, nullable=False, server_default="[]"),  # JSON list of terms
    Index("ix_subscribers_status", "status"),
    # the scheduler's buckets: the distinct delivery slots of confirmed readers, from the index
    Index("ix_subscribers_slot", "status", "timezone", "delivery_hour", "frequency", "weekday"),
)

# The send ledger: one row per (edition, reader). A batch is claimed, sent, then recorded.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(16), nullable=False),  # DeliveryStatus
    Column("claim", String(64), nullable=True),  # who holds it: host:pid:random
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("message_id", String(200), nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
    Index("ix_deliveries_edition_status", "edition_id", "status", "id"),  # claims read in order
)

# Append-only proof of consent: what happened, when, from where, and the wording shown.
subscriber_events = Table(
    "subscriber_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, nullable=True),  # None once the person is erased
    Column("email_hash", String(64), nullable=False),
    Column("kind", String(32), nullable=False),  # signup, confirm, preferences, unsubscribe, ...
    Column("at", UTCDateTime(), nullable=False),
    Column("source", String(200), nullable=False),  # "web 203.0.113.7", "cli", "import FILE"
    Column("wording", Text, nullable=False),  # the consent sentence shown, when there was one
    Column("details", Text, nullable=False),  # JSON
    Index("ix_subscriber_events_subscriber", "subscriber_id"),
)

# Addresses that must never be added again (erased, complained, hard bounce), hashed.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# One `newsletter run` per database: the holder refreshes its heartbeat while it runs.
# Accepted sign-ups per client (a keyed hash of "web ADDRESS"), pruned past the window.
rate_hits = Table(
    "rate_hits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_rate_hits_key_at", "key_hash", "at"),
)

# Facts every process checks itself against: the privacy key's fingerprint.
store_facts = Table(
    "store_facts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)

scheduler_lock = Table(
    "scheduler_lock",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("owner", String(200), nullable=False),  # host:pid
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
)


# Transactional mail waiting to go (confirmations), with the sign-up's choice of name and
# sectors: a pending reader's data changes only when they confirm, and the newest choice wins.
outgoing = Table(
    "outgoing",
    metadata,
    Column("id", Integer, primary_key=True),
    # the reader it goes to; None for an editor's link (``editor_link_id``)
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=True
    ),
    Column(
        "editor_link_id",
        Integer,
        ForeignKey("editor_links.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("kind", String(32), nullable=False),  # MailKind
    Column("name", String(200), nullable=False),
    Column("sectors", Text, nullable=False),  # JSON list of slugs
    Column("status", String(16), nullable=False),  # MailStatus
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("claim", String(200), nullable=True),  # the worker sending it (store/claims.py)
    Column("claimed_at", UTCDateTime(), nullable=True),  # when that worker took it
    Column("timezone", String(64), nullable=False, server_default=""),  # a confirmation's, as
    Column("delivery_hour", Integer, nullable=True),  # chosen at sign-up, applied on confirming
    Index("ix_outgoing_due", "status", "next_attempt_at"),
    Index("ix_outgoing_subscriber", "subscriber_id", "id"),
)


# Sign-ups as the web took them (the form checked, nothing looked up), until the web process's
# worker carries them out: the request does the same work whoever the address belongs to.
signups = Table(
    "signups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False),  # normalised
    Column("name", String(200), nullable=False),  # cleaned
    Column("sectors", Text, nullable=False),  # JSON list of slugs
    Column("source", String(200), nullable=False),  # "web 203.0.113.7"
    Column("created_at", UTCDateTime(), nullable=False),  # when the reader signed up
    Column("timezone", String(64), nullable=False, server_default=""),  # as chosen, checked
    Column("delivery_hour", Integer, nullable=True),
    Column("claim", String(200), nullable=True),  # the worker carrying it out (store/claims.py)
    Column("claimed_at", UTCDateTime(), nullable=True),  # when that worker took it
    Index("ix_signups_email", "email"),
)


# What mail providers (and bounce mailboxes) reported, each event once (keyed by the provider's
# id), stored as it arrives and applied to readers afterwards (``applied_at``). No address is
# kept: the reader is found when the event is stored.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(100), nullable=False, unique=True),  # sg_event_id, or derived
    Column("kind", String(16), nullable=False),  # EventKind
    Column("at", UTCDateTime(), nullable=False),  # when it happened
    Column("received_at", UTCDateTime(), nullable=False),
    Column("edition_id", Integer, nullable=True),  # None: transactional mail, or not ours
    Column("subscriber_id", Integer, nullable=True),  # None: no known reader
    Column("url", Text, nullable=False),  # the link clicked
    Column("reason", Text, nullable=False),  # the provider's words for a bounce
    Column("source", String(100), nullable=False),  # sendgrid, bounce mailbox NAME, web
    Column("applied_at", UTCDateTime(), nullable=True),  # None until applied to the reader
    Index("ix_events_pending", "applied_at", "id"),
    Index("ix_events_edition", "edition_id", "kind", "subscriber_id"),
    Index("ix_events_subscriber", "subscriber_id", "kind", "at"),
)


# What the optional writer wrote and the grounding check accepted, keyed by a hash of the model,
# the prompt's version and the outlets' text it was written from: a storyline is written once,
# and again only when its reports change. Old rows go when the writer next runs.
written = Table(
    "written",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 hex (writer/prompt.py)
    Column("text", Text, nullable=False),
    Column("model", String(200), nullable=False),
    Column("written_at", UTCDateTime(), nullable=False),
    Index("ix_written_at", "written_at"),
)


# The desk's accounts (``/desk``). The password is kept as its argon2 hash only; a change of
# ``session_version`` (disabled, removed, a new password) ends every session signed before it.
editors = Table(
    "editors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),  # normalised
    Column("name", String(200), nullable=False),
    Column("password_hash", String(255), nullable=True),  # None until a password is set
    Column("role", String(16), nullable=False),  # EditorRole
    Column("disabled", Boolean, nullable=False),
    Column("session_version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One-time set-password links: the token is derived from the row (its id and nonce) with the
# store's key, so neither the token nor its hash is kept; a link works once, before it expires.
editor_links = Table(
    "editor_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("editor_id", Integer, ForeignKey("editors.id", ondelete="CASCADE"), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
)

# Who did what on the desk, to what, when: kept when the editor is removed (by their address).
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("editor_id", Integer, nullable=True),  # None: nobody signed in (a refused sign-in)
    Column("editor_email", String(254), nullable=False),
    Column("action", String(32), nullable=False),  # AuditAction
    Column("target_kind", String(32), nullable=False),  # editor, edition, reader, feed, ...
    Column("target_id", String(200), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_at", "at", "id"),
)
