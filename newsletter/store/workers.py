"""Mixed into ``Store``: what several senders of one edition (on one or many machines) need
of each other: heartbeats on their claims, the rows others still hold, and giving rows back
(a stopped sender's own, a dead one's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update

from newsletter.models import DeliveryStatus
from newsletter.store.base import Repository
from newsletter.store.claims import ClaimRule
from newsletter.store.tables import deliveries


def _mine(claim: str) -> ColumnElement[bool]:
    return or_(
        deliveries.c.claim == claim,
        deliveries.c.claim.startswith(f"{claim}:", autoescape=True),
    )


class WorkerQueries(Repository):
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

    def release_claim(self, claim: str) -> None:
        """Give back, untouched, the rows still claimed by ``claim`` or by its batches
        (``claim:1``, ``claim:2``, ...): the send stopped before sending them."""
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(_mine(claim), deliveries.c.status == DeliveryStatus.CLAIMED)
                .values(status=DeliveryStatus.PENDING, claim=None, claimed_at=None)
            )

    def release_abandoned(self, edition_id: int, *, rule: ClaimRule, now: datetime) -> int:
        """Put back in the queue the claims ``rule`` no longer holds (their senders died or
        went silent); returns how many rows."""
        with self.engine.begin() as conn:
            claims = conn.execute(
                select(deliveries.c.claim, func.min(deliveries.c.claimed_at))
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.status == DeliveryStatus.CLAIMED,
                    rule.may_be_free(deliveries.c.claim, deliveries.c.claimed_at, now=now),
                )
                .group_by(deliveries.c.claim)
            ).all()
            released = 0
            for claim, claimed_at in claims:
                if not rule.holds(claim, claimed_at, now=now):
                    result = conn.execute(
                        update(deliveries)
                        .where(
                            deliveries.c.edition_id == edition_id,
                            deliveries.c.status == DeliveryStatus.CLAIMED,
                            deliveries.c.claim == claim,
                        )
                        .values(status=DeliveryStatus.PENDING, claim=None, claimed_at=None)
                    )
                    released += int(result.rowcount or 0)
        return released
