"""The ledger's index takes the delivery id as its last column, so a claim reads the lowest
pending ids of an edition in order straight from it: with (edition_id, status) alone, every
claim fetched and sorted all the edition's pending rows (a million at the start of a large
send) to keep a thousand.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_edition_status", table_name="deliveries")
    op.create_index("ix_deliveries_edition_status", "deliveries", ["edition_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_edition_status", table_name="deliveries")
    op.create_index("ix_deliveries_edition_status", "deliveries", ["edition_id", "status"])
