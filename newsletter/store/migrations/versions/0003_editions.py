"""Editions and the stories each one carried.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "editions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("edition_date", sa.Date(), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("built_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("snapshot", sa.Text(), nullable=False),
    )
    op.create_table(
        "edition_stories",
        sa.Column(
            "edition_id",
            sa.Integer(),
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("story_id", sa.String(32), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("edition_stories")
    op.drop_table("editions")
