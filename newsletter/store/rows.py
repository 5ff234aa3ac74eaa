"""A reader's row as the store reads it: the columns a claim reads, the record made of them,
and a delivery slot as columns. Shared by the ledger, the readers' queries, consent and
imports."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from newsletter.models import Frequency, Subscriber, SubscriberStatus
from newsletter.models.readers import Slot
from newsletter.records import Claim
from newsletter.store.tables import subscribers


@functools.lru_cache(maxsize=2048)
def sectors_of(raw: str) -> tuple[str, ...]:  # a few hundred distinct choices for many readers
    return tuple(json.loads(raw))


@functools.lru_cache(maxsize=4096)
def _terms(raw: str) -> tuple[str, ...]:  # watchlists: "[]" for most readers
    return tuple(json.loads(raw)) if raw != "[]" else ()


_STATUSES = {status.value: status for status in SubscriberStatus}  # a dict look-up per row
# what a reader's record is made of: the columns a claim reads (no timestamps to convert)
READER_COLUMNS = (
    subscribers.c.id,
    subscribers.c.email,
    subscribers.c.name,
    subscribers.c.sectors,
    subscribers.c.status,
    subscribers.c.token,
    subscribers.c.watchlist,
    subscribers.c.timezone,  # the greeting says the reader's time of day
)


def subscriber_record(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        sectors=sectors_of(row.sectors),
        status=_STATUSES[row.status],
        token=row.token,
        watchlist=_terms(row.watchlist),
        timezone=row.timezone,
        hour=row.delivery_hour,
        frequency=Frequency(row.frequency),
        weekday=row.weekday,
    )


def slot_values(slot: Slot) -> dict[str, Any]:
    """A slot as the subscribers table's columns."""
    return {
        "timezone": slot.timezone,
        "delivery_hour": slot.hour,
        "frequency": slot.frequency,
        "weekday": slot.weekday,
    }


def slot_of_row(row: Any) -> Slot:
    """A reader's slot from their row's columns."""
    return Slot(row.timezone, row.delivery_hour, Frequency(row.frequency), row.weekday)


def terms_of(raw: str) -> tuple[str, ...]:
    """A stored watchlist."""
    return _terms(raw)


def claims_of(rows: Iterable[Sequence[Any]]) -> list[Claim]:
    """Claimed rows, (delivery id, then ``READER_COLUMNS``) each, as claims."""
    statuses, sectors, terms = _STATUSES, sectors_of, _terms
    return [  # plain tuples unpacked: a million rows a send, each made once
        Claim(
            delivery_id,
            Subscriber(
                id_, email, name, sectors(chosen), statuses[status], token, terms(watching), zone
            ),
        )
        for delivery_id, id_, email, name, chosen, status, token, watching, zone in rows
    ]
