"""The one claim rule (``store/claims.py``), as each of its four users meets it: a ledger
batch, a queued email, a queued sign-up and a scheduler's lock are each held by a live owner
until it goes silent for the timeout, taken at once from a dead process on this host, and
never taken by two at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.config import Config, load_config
from newsletter.delivery.outgoing import CLAIM
from newsletter.models import (
    Channel,
    Edition,
    EditionStatus,
    MailKind,
    Section,
    Sector,
    Source,
    Story,
)
from newsletter.readers.subscriptions import add_subscriber, request_sign_up
from newsletter.store import Store
from newsletter.store.claims import host_name
from tests.conftest import NOW, write_config

RULE = CLAIM  # five minutes, as the outgoing worker's; every user passes its own timeout


@dataclass
class Queue:
    """One user of the rule: ``take(owner, now)`` claims its one row (or lock) for ``owner``,
    True when it got it."""

    take: Callable[[str, timedelta], bool]


def _ledger(config: Config, store: Store) -> Queue:
    story = Story("s1", "Copper output rises", "https://x.example.com/1", "", "Wire", NOW)
    edition = Edition("P", NOW.date(), (Section(Sector("mining", "Mining"), (story,)),), 5)
    store.editions.save_edition(edition, status=EditionStatus.FROZEN, now=NOW)
    stored = store.editions.edition(NOW.date())
    assert stored is not None
    add_subscriber(store, "ana@example.com", known_sectors=[], now=NOW)
    store.ledger.seed_deliveries(stored.id)

    def take(owner: str, after: timedelta) -> bool:
        store.ledger.release_abandoned(stored.id, rule=RULE, now=NOW + after)
        return bool(store.ledger.claim_batch(stored.id, claim=owner, size=1, now=NOW + after))

    return Queue(take)


def _email(config: Config, store: Store) -> Queue:
    reader, _ = add_subscriber(store, "ana@example.com", known_sectors=[], now=NOW)
    store.outgoing.queue_mail(reader.id, kind=MailKind.CONFIRMATION, name="", sectors=(), now=NOW)

    def take(owner: str, after: timedelta) -> bool:
        due = store.outgoing.due_mail(rule=RULE, now=NOW + after, limit=5)
        return any(store.outgoing.claim_mail(m, owner, now=NOW + after) for m in due)

    return Queue(take)


def _signup(config: Config, store: Store) -> Queue:
    web = Source(Channel.WEB, "10.0.0.1")
    request_sign_up(
        config, store, address="ana@example.com", name="", sectors=[], source=web, now=NOW
    )

    def take(owner: str, after: timedelta) -> bool:
        due = store.outgoing.due_signups(rule=RULE, now=NOW + after, limit=5)
        return any(store.outgoing.claim_signup(q, owner, now=NOW + after) for q in due)

    return Queue(take)


def _lock(config: Config, store: Store) -> Queue:
    def take(owner: str, after: timedelta) -> bool:
        return store.locks.take_lock("run:send", owner, now=NOW + after, rule=RULE).taken

    return Queue(take)


USERS = {"ledger": _ledger, "email": _email, "signup": _signup, "lock": _lock}


@pytest.fixture
def queues(tmp_path: Path) -> Iterator[dict[str, Queue]]:
    """Each user of the rule with its one row (or lock), all in one store."""
    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    yield {name: make(config, store) for name, make in USERS.items()}
    store.close()


def _dead_here() -> str:
    """The owner name of a process on this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{host_name()}:{child.pid}:0a0b0c0d"


def test_a_live_owner_elsewhere_holds_until_silent_for_the_timeout(
    queues: dict[str, Queue],
) -> None:
    far, near = "far-host:4242:1a2b3c4d", "near-host:1:ffff0000"
    for name, queue in queues.items():
        assert queue.take(far, timedelta(0)), name
        assert not queue.take(near, timedelta(minutes=1)), name
        assert not queue.take(near, RULE.timeout - timedelta(seconds=1)), name
        assert queue.take(near, RULE.timeout + timedelta(seconds=1)), name
        assert not queue.take(far, RULE.timeout + timedelta(seconds=2)), name


def test_a_dead_process_on_this_host_loses_its_claim_at_once(queues: dict[str, Queue]) -> None:
    dead, mine = _dead_here(), f"{host_name()}:{os.getpid()}:11112222"
    for name, queue in queues.items():
        assert queue.take(dead, timedelta(0)), name
        assert queue.take(mine, timedelta(seconds=1)), name


def test_a_live_process_on_this_host_keeps_its_claim(queues: dict[str, Queue]) -> None:
    for name, queue in queues.items():
        assert queue.take(f"{host_name()}:{os.getpid()}:11112222", timedelta(0)), name
        assert not queue.take(f"{host_name()}:{os.getpid()}:33334444", timedelta(minutes=1)), name
