"""Sign-ups waiting for the web process's worker: a sign-up's request only checks the form and
queues it here, so it does the same work whoever the address belongs to; the worker looks the
address up and carries the sign-up out (issue 24). A row lives until it is carried out, or
until its address is erased.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sectors", sa.Text(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_signups_email", "signups", ["email"])


def downgrade() -> None:
    op.drop_index("ix_signups_email", table_name="signups")
    op.drop_table("signups")
