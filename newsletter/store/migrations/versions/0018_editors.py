"""The editor's desk (issue 28): editor accounts, their one-time set-password links, the audit
log, and the outgoing queue able to carry an editor's link (a row for a reader or a link).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.tables import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "editors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("session_version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "editor_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "editor_id",
            sa.Integer,
            sa.ForeignKey("editors.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("editor_id", sa.Integer, nullable=True),
        sa.Column("editor_email", sa.String(254), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at", "id"])
    with op.batch_alter_table("outgoing") as batch:
        batch.alter_column("subscriber_id", existing_type=sa.Integer, nullable=True)
        batch.add_column(
            sa.Column(
                "editor_link_id",
                sa.Integer,
                sa.ForeignKey(
                    "editor_links.id", name="fk_outgoing_editor_link", ondelete="CASCADE"
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    op.execute("DELETE FROM outgoing WHERE subscriber_id IS NULL")
    with op.batch_alter_table("outgoing") as batch:
        batch.drop_column("editor_link_id")
        batch.alter_column("subscriber_id", existing_type=sa.Integer, nullable=False)
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_table("audit")
    op.drop_table("editor_links")
    op.drop_table("editors")
