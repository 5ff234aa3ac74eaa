"""Consent history and suppressions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("wording", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
    )
    op.create_index("ix_subscriber_events_subscriber", "subscriber_events", ["subscriber_id"])
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("confirmation_sent_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("confirmation_sent_at")
    op.drop_table("suppressions")
    op.drop_table("subscriber_events")
