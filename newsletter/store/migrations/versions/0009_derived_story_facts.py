"""What a build derives from a story, kept: its judged sectors and its cluster of same news.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("judged_rules", sa.String(16), nullable=True))
        batch.add_column(sa.Column("judged", sa.Text(), nullable=True))
        batch.add_column(sa.Column("cluster_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("cluster_id")
        batch.drop_column("judged")
        batch.drop_column("judged_rules")
