"""Subscribers lose ``confirmation_sent_at``: the outgoing queue's own rows say when each
confirmation went (``last_mail_sent_at``), and nothing read the column any more.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("confirmation_sent_at")


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("confirmation_sent_at", UTCDateTime(), nullable=True))
