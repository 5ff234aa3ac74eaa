"""What ``newsletter serve``'s access log keeps of a request: its path with a link's token
masked. A reader's token opens their preferences and unsubscribes them, an editor's
set-password link signs in: neither may reach a log (journald keeps it for anyone who reads
the machine's logs)."""

from __future__ import annotations

import logging
import re

# the paths whose next segment is a token (the routes of ``web/app.py`` and the desk's sign-in)
_TOKEN = re.compile(
    r"^(/(?:confirm|preferences|resubscribe|unsubscribe|desk/set-password)/)[^/?#]+"
)
ACCESS_LOGGER = "uvicorn.access"


def masked(path: str) -> str:
    """``path`` with the token of a link masked: ``/preferences/…``."""
    return _TOKEN.sub("\\1\u2026", path)


class MaskTokens(logging.Filter):
    """Masks the path of uvicorn's access record: ``'%s - "%s %s HTTP/%s" %d'`` with
    (client, method, path, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], masked(args[2]), *args[3:])
        return True


def mask_tokens_in_access_log() -> None:
    """Mask tokens in the access log from now on (after uvicorn has set up its logging)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, MaskTokens) for f in logger.filters):
        logger.addFilter(MaskTokens())
