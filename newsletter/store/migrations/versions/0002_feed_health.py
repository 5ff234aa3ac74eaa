"""Feed health: when a feed started failing, its last HTTP status and fetch time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("failing_since", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_fetched", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("moved_at", UTCDateTime(), nullable=True))
    op.create_index("ix_stories_feed_published", "stories", ["feed_id", "published"])


def downgrade() -> None:
    op.drop_index("ix_stories_feed_published", "stories")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("moved_at")
        batch.drop_column("last_fetched")
        batch.drop_column("last_status")
        batch.drop_column("failing_since")
