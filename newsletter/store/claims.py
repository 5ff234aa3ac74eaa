"""Who holds a claim (a ledger batch, the scheduler's lock): ``host:pid:random``, and whether
that holder is still alive."""

from __future__ import annotations

import os
import secrets
import socket

HOST_ENV = "NEWSLETTER_HOST"  # this process's host identity, when the host name is not enough


def host_name() -> str:
    """The host a claim names: ``NEWSLETTER_HOST`` (two containers on one machine, a test's
    two "hosts"), else the machine's name."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


def claim_id() -> str:
    return f"{host_name()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim_is_alive(claim: str) -> bool:
    """A ``host:pid[:...]`` holder on this host is alive while its process is; a holder on
    another host is trusted here, and found dead by its heartbeat going silent instead.

    Used for the ledger's batch claims and for the scheduler's lock.
    """
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


def running_here(claim: str) -> bool:
    """Whether the holder of ``claim`` is a live process on this host (a holder named for
    another host is not: nothing here can tell)."""
    return claim.partition(":")[0] == host_name() and claim_is_alive(claim)
