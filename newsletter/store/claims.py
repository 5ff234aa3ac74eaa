"""The one claim rule of the house: how a ledger batch, a queued email or sign-up and a
scheduler's lock are each held by one process at a time, across processes and machines.

A claim is a row's owner (``host:pid:random``, see ``claim_id``) and the time of the owner's
last beat. ``ClaimRule.holds`` says whether it is still held: while the owner has beaten within
the rule's timeout and, when the owner is a process on this host, while that process lives (a
holder on another host is found dead by its beat going silent). A claim the rule does not hold
is taken over by compare-and-set on the owner seen (``owned_by``), so two takers never both win.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_
from sqlalchemy.sql.elements import ColumnClause

HOST_ENV = "NEWSLETTER_HOST"  # this process's host identity, when the host name is not enough


def host_name() -> str:
    """The host a claim names: ``NEWSLETTER_HOST`` (two containers on one machine, a test's
    two "hosts"), else the machine's name."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


def claim_id() -> str:
    return f"{host_name()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim_is_alive(claim: str) -> bool:
    """A ``host:pid[:...]`` holder on this host is alive while its process is; a holder on
    another host is trusted here, and found dead by its heartbeat going silent instead."""
    host, _, rest = claim.partition(":")
    pid = rest.partition(":")[0]
    if host != host_name() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class ClaimRule:
    """When a claim is still its owner's: a beat within ``timeout`` and a live owner."""

    timeout: timedelta
    alive: Callable[[str], bool] = field(default=claim_is_alive)

    def stale_before(self, now: datetime) -> datetime:
        return now - self.timeout

    def holds(self, owner: str | None, beat_at: datetime | None, *, now: datetime) -> bool:
        """Whether ``owner``'s claim, last beaten at ``beat_at``, still stands at ``now``."""
        if owner is None or beat_at is None:
            return False
        return beat_at >= self.stale_before(now) and self.alive(owner)

    def may_be_free(
        self, owner: ColumnClause[str], beat_at: ColumnClause[datetime], *, now: datetime
    ) -> ColumnElement[bool]:
        """The rows a query should look at to find free ones: unclaimed, silent, or held by a
        process on this host (whose life ``holds`` then checks); a live claim elsewhere is
        passed over in the database."""
        return or_(
            owner.is_(None),
            beat_at < self.stale_before(now),
            owner.startswith(f"{host_name()}:", autoescape=True),
        )


def owned_by(owner: ColumnClause[str], seen: str | None) -> ColumnElement[bool]:
    """The compare-and-set guard of a take-over: the row's owner is still the one seen."""
    return owner.is_(None) if seen is None else owner == seen
