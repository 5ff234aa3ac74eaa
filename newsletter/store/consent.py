"""Mixed into ``Store``: subscribers by token, the consent history, suppressions, erasure."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)

from newsletter.models import ConsentKind, Source, Subscriber, SubscriberStatus, SuppressionReason
from newsletter.models.readers import Slot
from newsletter.records import ConsentEvent
from newsletter.store.base import Repository
from newsletter.store.rows import slot_values, subscriber_record
from newsletter.store.tables import (
    events,
    subscriber_events,
    subscribers,
    suppressions,
)


def email_hash(email: str) -> str:
    """The old, unkeyed suppression key (SHA-256 of the address): only to find old entries."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def keyed_hash(key: bytes, email: str) -> str:
    """The suppression key of an address: HMAC-SHA256 under the publication's secret, so the
    list cannot be reversed by hashing guessed addresses."""
    return hmac.digest(key, email.strip().lower().encode(), "sha256").hex()


def keyed_hashes(key: bytes, emails: Sequence[str]) -> list[str]:
    """``keyed_hash`` of many normalised addresses (none stripped or lowered again): the key's
    two padded SHA-256 states are made once and copied per address, which is HMAC (RFC 2104)
    at a third of ``hmac.digest``'s cost per call."""
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    inner = hashlib.sha256(key.translate(_INNER_PAD))
    outer = hashlib.sha256(key.translate(_OUTER_PAD))
    out = []
    for email in emails:
        first = inner.copy()
        first.update(email.encode())
        second = outer.copy()
        second.update(first.digest())
        out.append(second.hexdigest())
    return out


_SHA256_BLOCK = 64
_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))


class ConsentQueries(Repository):
    def address_key(self, email: str) -> str:
        return keyed_hash(self.privacy_key, email)

    def subscriber_by_token(self, token: str) -> Subscriber | None:
        if not token or len(token) > 64:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.token == token)).first()
        return None if row is None else subscriber_record(row)

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return None if row is None else subscriber_record(row)

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
        return None if row is None else subscriber_record(row)

    def update_subscriber(
        self,
        subscriber_id: int,
        *,
        now: datetime,
        status: SubscriberStatus | None = None,
        name: str | None = None,
        sectors: Sequence[str] | None = None,
        slot: Slot | None = None,
        watchlist: Sequence[str] | None = None,
        token: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if token is not None:
            values["token"] = token
        if status is not None:
            values["status"] = status
        if name is not None:
            values["name"] = name
        if sectors is not None:
            values["sectors"] = json.dumps(list(sectors))
        if slot is not None:
            values |= slot_values(slot)
        if watchlist is not None:
            values["watchlist"] = json.dumps(list(watchlist), ensure_ascii=False)
        with self.engine.begin() as conn:
            conn.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(values)
            )

    def add_event(
        self,
        subscriber: Subscriber,
        kind: ConsentKind,
        *,
        now: datetime,
        source: Source,
        wording: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.add_events(
            [(subscriber, kind, details or {})], now=now, source=source, wording=wording
        )

    def add_events(
        self,
        events: Iterable[tuple[Subscriber, ConsentKind, Mapping[str, Any]]],
        *,
        now: datetime,
        source: Source,
        wording: str = "",
    ) -> None:
        rows = [
            {
                "subscriber_id": s.id,
                "email_hash": self.address_key(s.email),
                "kind": kind,
                "at": now,
                "source": str(source)[:200],
                "wording": wording,
                "details": json.dumps(dict(details), ensure_ascii=False),
            }
            for s, kind, details in events
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(subscriber_events), rows)

    def events_of(self, subscriber_id: int) -> list[ConsentEvent]:
        """A reader's consent history, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriber_events)
                .where(subscriber_events.c.subscriber_id == subscriber_id)
                .order_by(subscriber_events.c.id)
            ).all()
        return [
            ConsentEvent(
                ConsentKind(r.kind), Source.parse(r.source), r.wording, json.loads(r.details), r.at
            )
            for r in rows
        ]

    def is_suppressed(self, email: str) -> bool:
        """Whether an address is suppressed; an old unkeyed entry is re-keyed when found."""
        keyed, old = self.address_key(email), email_hash(email)
        with self.engine.begin() as conn:
            found = (
                conn.execute(
                    select(suppressions.c.email_hash).where(
                        suppressions.c.email_hash.in_([keyed, old])
                    )
                )
                .scalars()
                .all()
            )
            if old in found and keyed not in found:
                conn.execute(
                    update(suppressions)
                    .where(suppressions.c.email_hash == old)
                    .values(email_hash=keyed)
                )
        return bool(found)

    def suppressed_hashes(self) -> dict[str, str]:
        """Every suppression key (keyed, and any old unkeyed one) with its reason
        (``SuppressionReason``), for checks in bulk."""
        query = select(suppressions.c.email_hash, suppressions.c.reason)
        with self.engine.connect() as conn:
            return {key: str(reason) for key, reason in conn.execute(query)}

    def erase(self, email: str, *, now: datetime, source: Source) -> int | None:
        """Delete a person: their row, their consent history (sign-up IPs, times, wording)
        and any old unkeyed entry; only a keyed hash stays in the suppression list. Returns
        the reader's id (None when the address was not a reader)."""
        key, old = self.address_key(email), email_hash(email)
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers.c.id).where(subscribers.c.email == email)).first()
            if row is not None:
                conn.execute(
                    delete(subscriber_events).where(subscriber_events.c.subscriber_id == row.id)
                )
                conn.execute(delete(events).where(events.c.subscriber_id == row.id))
                conn.execute(delete(subscribers).where(subscribers.c.id == row.id))
            conn.execute(
                delete(subscriber_events).where(subscriber_events.c.email_hash.in_([key, old]))
            )
            conn.execute(delete(suppressions).where(suppressions.c.email_hash.in_([key, old])))
            conn.execute(
                insert(suppressions).values(email_hash=key, reason=SuppressionReason.ERASED, at=now)
            )
            # that an erasure happened, and when: nothing that leads back to the person
            conn.execute(
                insert(subscriber_events).values(
                    subscriber_id=None,
                    email_hash="",
                    kind=ConsentKind.ERASURE,
                    at=now,
                    source=str(source.channel),  # never who asked
                    wording="",
                    details="{}",
                )
            )
        return None if row is None else int(row.id)

    def iter_subscribers(
        self, *, status: SubscriberStatus | None = None, page: int = 5000
    ) -> Iterator[Subscriber]:
        """Every reader in id order, read from the store a page at a time."""
        after = 0
        while True:
            query = select(subscribers).where(subscribers.c.id > after)
            if status is not None:
                query = query.where(subscribers.c.status == status)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(subscribers.c.id).limit(page)).all()
            if not rows:
                return
            for row in rows:
                yield subscriber_record(row)
            after = rows[-1].id
