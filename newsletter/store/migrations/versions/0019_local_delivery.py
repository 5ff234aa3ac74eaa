"""Readers choose when, how often and what to follow (issue 29): each reader's time zone,
delivery hour, frequency (daily or weekly, on a weekday) and watchlist; an edition has a kind
(daily, weekly), one of each kind a date.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# SQLite's constraint from ``unique=True`` has no name: the convention gives it one to drop
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _date_unique() -> str:
    """The name the one-edition-a-date constraint has on this database."""
    dialect = op.get_bind().dialect.name
    return "editions_edition_date_key" if dialect == "postgresql" else "uq_editions_edition_date"


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("delivery_hour", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("frequency", sa.String(8), nullable=False, server_default="daily")
        )
        batch.add_column(sa.Column("weekday", sa.Integer, nullable=True))
        batch.add_column(sa.Column("watchlist", sa.Text, nullable=False, server_default="[]"))
    for table in ("signups", "outgoing"):  # the zone and hour a sign-up chose, until confirmed
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("timezone", sa.String(64), nullable=False, server_default="")
            )
            batch.add_column(sa.Column("delivery_hour", sa.Integer, nullable=True))
    op.create_index(
        "ix_subscribers_slot",
        "subscribers",
        ["status", "timezone", "delivery_hour", "frequency", "weekday"],
    )
    with op.batch_alter_table("editions", naming_convention=_NAMES) as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="daily"))
        batch.drop_constraint(_date_unique(), type_="unique")
        batch.create_unique_constraint("uq_editions_date_kind", ["edition_date", "kind"])
    op.create_table(  # each frozen edition's variants, rendered once for every pass
        "rendered_variants",
        sa.Column(
            "edition_id",
            sa.Integer,
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("choice", sa.String(400), primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rendered_variants")
    op.execute("DELETE FROM editions WHERE kind <> 'daily'")
    with op.batch_alter_table("editions", naming_convention=_NAMES) as batch:
        batch.drop_constraint("uq_editions_date_kind", type_="unique")
        batch.create_unique_constraint(_date_unique(), ["edition_date"])
        batch.drop_column("kind")
    op.drop_index("ix_subscribers_slot", table_name="subscribers")
    for table in ("signups", "outgoing"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("delivery_hour")
            batch.drop_column("timezone")
    with op.batch_alter_table("subscribers") as batch:
        for column in ("watchlist", "weekday", "frequency", "delivery_hour", "timezone"):
            batch.drop_column(column)
