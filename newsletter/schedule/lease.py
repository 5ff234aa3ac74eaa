"""The scheduler's lease: one lock row for each role a ``newsletter run`` plays, held by
heartbeat, so exactly one scheduler runs each job for a database, across machines.

A lock is a claim (``store/claims.py``, the rule the ledger and the outgoing queue follow too):
the owner's (``host:pid``, the host as ``NEWSLETTER_HOST`` names it) while it beats
every third of ``schedule.lease_seconds``. Another scheduler may take it once it has been silent
for the lease (a standby looks every tenth of it: it takes over within 1.1 leases of the
holder's last beat), or at once when the holder is a process on this host that is gone. A holder
whose beat finds the row no longer its own was cut off longer than the lease and stops.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from newsletter.errors import ScheduleError
from newsletter.records import LockAnswer
from newsletter.store.claims import ClaimRule, host_name

if TYPE_CHECKING:
    from newsletter.store import Store

logger = logging.getLogger("newsletter.run")


def owner() -> str:
    return f"{host_name()}:{os.getpid()}"  # the host as ClaimRule reads it


@dataclass
class Lease:
    """The scheduler's locks, one for each role it plays, kept by heartbeat."""

    store: Store
    owner: str
    roles: tuple[str, ...]
    seconds: float
    clock: Callable[[], datetime]
    lost: bool = False

    def take(self) -> tuple[str, LockAnswer] | None:
        """Take every role's lock, or none: None when taken, else the first role held
        elsewhere and who holds it."""
        taken: list[str] = []
        for role in self.roles:
            answer = self.store.locks.take_lock(
                f"run:{role}",
                self.owner,
                now=self.clock(),
                rule=ClaimRule(timedelta(seconds=self.seconds)),
            )
            if not answer.taken:
                for held in taken:
                    self.store.locks.release_lock(f"run:{held}", self.owner)
                return role, answer
            taken.append(role)
        return None

    def keep(self, stop: threading.Event) -> None:
        """Beat every third of the lease until stopped; stop the runner if a lock was lost."""
        while not stop.wait(self.seconds / 3):
            try:
                kept = [
                    self.store.locks.beat(f"run:{r}", self.owner, now=self.clock())
                    for r in self.roles
                ]
            except Exception:  # keep beating through a passing database hiccup
                logger.exception("heartbeat failed")
                continue
            if not all(kept) and not stop.is_set():  # a stop releases the rows itself
                logger.error(
                    "run: another scheduler took over this one's lock (it could not reach the "
                    "database for %g s); stopping so that only one runs the jobs",
                    self.seconds,
                )
                self.lost = True
                stop.set()
                return

    def release(self) -> None:
        for role in self.roles:
            self.store.locks.release_lock(f"run:{role}", self.owner)


def stand_by(
    lease: Lease, stop: threading.Event, *, standby: bool, say: Callable[[str], None]
) -> bool:
    """Take the lease, waiting for it with ``standby``; False when stopped while waiting."""
    held = lease.take()
    if held is None:
        return True
    role, answer = held
    started = f" since {answer.since:%Y-%m-%d %H:%M} UTC" if answer.since else ""
    if not standby:
        raise ScheduleError(
            f"another `newsletter run` ({answer.holder}{started}) is already running the "
            f"{role} job on this database",
            hint="Stop that one first, or start this one with --standby to take over when it "
            "stops; only one scheduler may run each job for a database.",
        )
    say(
        f"standby: {answer.holder}{started} runs the {role} job; taking over once it has "
        f"been silent for {lease.seconds:g} s"
    )
    while lease.take() is not None:
        if stop.wait(lease.seconds / 10):  # a look every tenth of the lease
            return False
    say(f"standby: took over at {lease.clock().isoformat(timespec='milliseconds')}")
    return True
