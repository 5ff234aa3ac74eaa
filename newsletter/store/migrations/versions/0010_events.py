"""Provider events (SendGrid's Event Webhook, bounce mailboxes), each applied once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("edition_id", sa.Integer, nullable=True),
        sa.Column("subscriber_id", sa.Integer, nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_events_pending", "events", ["applied_at", "id"])
    op.create_index("ix_events_edition", "events", ["edition_id", "kind", "subscriber_id"])
    op.create_index("ix_events_subscriber", "events", ["subscriber_id", "kind", "at"])


def downgrade() -> None:
    op.drop_table("events")
