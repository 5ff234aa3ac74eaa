"""Storylines kept: the ``storylines`` editions showed, with their first and latest story, and
each story's ``storyline_id``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storylines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_story_id", sa.String(32), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("latest_story_id", sa.String(32), nullable=False),
        sa.Column("latest_at", UTCDateTime(), nullable=False),
        sa.Column("outlets", sa.Integer, nullable=False),
        sa.Column("last_edition_id", sa.Integer, nullable=True),
    )
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("storyline_id", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("storyline_id")
    op.drop_table("storylines")
