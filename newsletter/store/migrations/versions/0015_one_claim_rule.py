"""Queued emails and sign-ups are claimed as ledger rows and scheduler locks are: an owner and
the time it took the row (``store/claims.py``), instead of a time until which some unnamed
worker had it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outgoing") as batch:
        batch.add_column(sa.Column("claim", sa.String(200), nullable=True))
        batch.add_column(sa.Column("claimed_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("signups") as batch:
        batch.drop_column("claimed_until")
        batch.add_column(sa.Column("claim", sa.String(200), nullable=True))
        batch.add_column(sa.Column("claimed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signups") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claim")
        batch.add_column(sa.Column("claimed_until", UTCDateTime(), nullable=True))
    with op.batch_alter_table("outgoing") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claim")
