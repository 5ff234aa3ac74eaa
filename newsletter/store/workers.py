"""Mixed into ``Store``: what several senders of one edition (on one or many machines) need
of each other: heartbeats on their claims, and the rows others still hold."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Engine, func, or_, select, update

from newsletter.models import DeliveryStatus
from newsletter.store.tables import deliveries


def _mine(claim: str) -> ColumnElement[bool]:
    return or_(
        deliveries.c.claim == claim,
        deliveries.c.claim.startswith(f"{claim}:", autoescape=True),
    )


class WorkerQueries:
    engine: Engine

    def beat_claims(self, claim: str, *, now: datetime) -> None:
        """A sender's heartbeat: its claimed rows are fresh as of ``now`` (a silent sender's
        go stale after ``delivery.claim_timeout_minutes`` and are given to another)."""
        # rows being recorded at this moment are passed over (they need no beat): a beat never
        # waits on, or deadlocks with, the sender's own writes
        rows = (
            select(deliveries.c.id)
            .where(_mine(claim), deliveries.c.status == DeliveryStatus.CLAIMED)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id.in_(rows)).values(claimed_at=now))

    def claimed_elsewhere(self, edition_id: int, claim: str) -> int:
        """Rows of the edition another sender holds (``claim`` is this sender's)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(deliveries)
                    .where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.status == DeliveryStatus.CLAIMED,
                        ~_mine(claim),
                    )
                ).scalar_one()
            )
