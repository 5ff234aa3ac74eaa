"""Who holds a claim (a ledger batch, the scheduler's lock): ``host:pid:random``, and whether
that holder is still alive."""

from __future__ import annotations

import os
import secrets
import socket


def claim_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim_is_alive(claim: str) -> bool:
    """A ``host:pid[:...]`` holder on this host is alive while its process is; others are trusted.

    Used for the ledger's batch claims and for the scheduler's lock.
    """
    host, _, rest = claim.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
