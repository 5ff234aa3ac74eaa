"""What the optional writer wrote and the grounding check accepted, keyed by a hash of the
model, the prompt's version and the outlets' text (issue 27).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "written",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("written_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_written_at", "written", ["written_at"])


def downgrade() -> None:
    op.drop_index("ix_written_at", table_name="written")
    op.drop_table("written")
