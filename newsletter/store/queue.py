"""``OutgoingQueue``: the queue of transactional mail (``outgoing``) and the queue of
sign-ups the web took (``signups``), both worked through by the web process's worker, each row
taken by one worker at a time under the house's one claim rule (``store/claims.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from newsletter.models import MailKind, MailStatus, Source
from newsletter.models.readers import DEFAULT_SLOT, Slot
from newsletter.records import Outgoing, QueuedSignup
from newsletter.store.base import Repository
from newsletter.store.claims import ClaimRule, owned_by
from newsletter.store.tables import outgoing, signups


def _outgoing(row: Any) -> Outgoing:
    return Outgoing(
        id=row.id,
        subscriber_id=row.subscriber_id,
        kind=MailKind(row.kind),
        name=row.name,
        sectors=tuple(json.loads(row.sectors)),
        status=MailStatus(row.status),
        attempts=row.attempts,
        created_at=row.created_at,
        claim=row.claim,
        claimed_at=row.claimed_at,
        editor_link_id=row.editor_link_id,
        slot=Slot(row.timezone, row.delivery_hour),
    )


class OutgoingQueue(Repository):
    def queue_mail(
        self,
        subscriber_id: int,
        *,
        kind: MailKind,
        name: str,
        sectors: Sequence[str],
        now: datetime,
        held: bool = False,
        slot: Slot = DEFAULT_SLOT,
    ) -> None:
        """Queue a transactional email, or only record the choice it carries (``held``)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(outgoing).values(
                    subscriber_id=subscriber_id,
                    kind=kind,
                    name=name,
                    sectors=json.dumps(list(sectors)),
                    status=MailStatus.HELD if held else MailStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    timezone=slot.timezone,
                    delivery_hour=slot.hour,
                )
            )

    def queue_editor_link(self, link_id: int, *, now: datetime) -> None:
        """Queue the email that carries an editor's one-time set-password link."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(outgoing).values(
                    editor_link_id=link_id,
                    kind=MailKind.EDITOR_LINK,
                    name="",
                    sectors="[]",
                    status=MailStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    def latest_mail(self, subscriber_id: int, *, kind: MailKind) -> Outgoing | None:
        """The newest queued email of a kind for a reader, whatever its status."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(outgoing)
                .where(outgoing.c.subscriber_id == subscriber_id, outgoing.c.kind == kind)
                .order_by(outgoing.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _outgoing(row)

    def last_mail_sent_at(self, subscriber_id: int, *, kind: MailKind) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(outgoing.c.created_at)
                .where(
                    outgoing.c.subscriber_id == subscriber_id,
                    outgoing.c.kind == kind,
                    outgoing.c.status.in_([MailStatus.PENDING, MailStatus.SENT]),
                )
                .order_by(outgoing.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    def due_mail(self, *, rule: ClaimRule, now: datetime, limit: int) -> list[Outgoing]:
        """Emails due to go that no live worker holds (by ``rule``), oldest due first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outgoing)
                .where(
                    outgoing.c.status == MailStatus.PENDING,
                    outgoing.c.next_attempt_at <= now,
                    rule.may_be_free(outgoing.c.claim, outgoing.c.claimed_at, now=now),
                )
                .order_by(outgoing.c.next_attempt_at, outgoing.c.id)
                .limit(limit)
            ).all()
        found = [_outgoing(r) for r in rows]
        return [m for m in found if not rule.holds(m.claim, m.claimed_at, now=now)]

    def claim_mail(self, mail: Outgoing, owner: str, *, now: datetime) -> bool:
        """Take a due email for ``owner``; False when another worker took it first."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(outgoing)
                .where(
                    outgoing.c.id == mail.id,
                    outgoing.c.status == MailStatus.PENDING,
                    owned_by(outgoing.c.claim, mail.claim),
                )
                .values(claim=owner, claimed_at=now)
            ).rowcount
        return bool(taken)

    def mail_sent(self, mail_id: int, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(outgoing)
                .where(outgoing.c.id == mail_id)
                .values(
                    status=MailStatus.SENT,
                    sent_at=now,
                    attempts=outgoing.c.attempts + 1,
                    claim=None,
                    claimed_at=None,
                )
            )

    def mail_failed(
        self, mail_id: int, *, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        """An attempt failed: try again at ``retry_at``, or give up (None)."""
        values: dict[str, Any] = {
            "attempts": outgoing.c.attempts + 1,
            "last_error": error,
            "claim": None,
            "claimed_at": None,
        }
        if retry_at is None:
            values["status"] = MailStatus.FAILED
        else:
            values["next_attempt_at"] = retry_at
        with self.engine.begin() as conn:
            conn.execute(update(outgoing).where(outgoing.c.id == mail_id).values(values))

    # --- sign-ups ----------------------------------------------------------------------------

    def queue_signup(
        self,
        email: str,
        *,
        name: str,
        sectors: Sequence[str],
        source: Source,
        now: datetime,
        slot: Slot = DEFAULT_SLOT,
    ) -> None:
        """Keep a checked sign-up for the worker: one INSERT, whoever the address is."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(signups).values(
                    email=email,
                    name=name,
                    sectors=json.dumps(list(sectors)),
                    source=str(source),
                    created_at=now,
                    timezone=slot.timezone,
                    delivery_hour=slot.hour,
                )
            )

    def due_signups(self, *, rule: ClaimRule, now: datetime, limit: int) -> list[QueuedSignup]:
        """Queued sign-ups no live worker holds (by ``rule``), oldest first."""
        maybe = rule.may_be_free(signups.c.claim, signups.c.claimed_at, now=now)
        with self.engine.connect() as conn:
            rows = conn.execute(select(signups).where(maybe).order_by(signups.c.id).limit(limit))
            found = [
                QueuedSignup(
                    r.id,
                    r.email,
                    r.name,
                    tuple(json.loads(r.sectors)),
                    Source.parse(r.source),
                    r.created_at,
                    r.claim,
                    r.claimed_at,
                    Slot(r.timezone, r.delivery_hour),
                )
                for r in rows
            ]
        return [q for q in found if not rule.holds(q.claim, q.claimed_at, now=now)]

    def claim_signup(self, queued: QueuedSignup, owner: str, *, now: datetime) -> bool:
        """Take a queued sign-up for ``owner``; False when another worker took it first."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(signups)
                .where(signups.c.id == queued.id, owned_by(signups.c.claim, queued.claim))
                .values(claim=owner, claimed_at=now)
            ).rowcount
        return bool(taken)

    def signup_done(self, signup_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(signups).where(signups.c.id == signup_id))

    def queued_signups(self) -> int:
        """How many sign-ups wait for the worker (or are being carried out)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(signups)).scalar_one())

    def forget_signups(self, email: str) -> None:
        """Drop the queued sign-ups of an address (its person is being erased)."""
        with self.engine.begin() as conn:
            conn.execute(delete(signups).where(signups.c.email == email))
