"""Curation: story languages, article-page teasers, the editor's labels and the sector model.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("feed_language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("page_fetched_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("page_teaser", sa.Text(), nullable=True))
        batch.add_column(sa.Column("page_error", sa.Text(), nullable=True))
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("story_id", sa.String(32), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("sector", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("story_id", "source", name="uq_labels_story_source"),
    )
    op.create_table(
        "sector_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("examples", sa.Integer, nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sector_models")
    op.drop_table("labels")
    with op.batch_alter_table("stories") as batch:
        for name in ("page_error", "page_teaser", "page_fetched_at", "language", "feed_language"):
            batch.drop_column(name)
