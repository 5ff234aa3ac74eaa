"""The desk's session cookie: the editor's id, their session version and the time of sign-in,
signed with HMAC-SHA256 under the secret key (``Config.secret_key``).

Nothing else is kept: a session is good while its signature holds, it is younger than
``desk.session_hours``, and the editor's account still has that session version (disabling,
removing or a new password bump it, so every older cookie dies at once).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

COOKIE = "desk_session"
_CONTEXT = b"newsletter desk session v1:"


@dataclass(frozen=True, slots=True)
class Session:
    editor_id: int
    version: int
    issued: datetime  # when the editor signed in (UTC, whole seconds)


class Signer:
    """Makes and reads session cookies under one key."""

    def __init__(self, key: Callable[[], bytes], *, lifetime: timedelta) -> None:
        self._key_of = key  # read on first use: no key file is made until a desk page needs it
        self._key = b""
        self.lifetime = lifetime

    def _mac(self, payload: str) -> str:
        if not self._key:
            self._key = self._key_of()
        digest = hmac.digest(self._key, _CONTEXT + payload.encode(), "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, session: Session) -> str:
        payload = f"{session.editor_id}.{session.version}.{int(session.issued.timestamp())}"
        return f"{payload}.{self._mac(payload)}"

    def read(self, cookie: str, *, now: datetime) -> Session | None:
        """The session a cookie holds, or None: forged, malformed, expired or from the
        future (a clock set back)."""
        if not cookie or len(cookie) > 200:
            return None
        payload, _, mac = cookie.rpartition(".")
        if not payload or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        parts = payload.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        editor_id, version, issued_at = (int(p) for p in parts)
        issued = datetime.fromtimestamp(issued_at, UTC)
        if issued > now + timedelta(minutes=5) or now - issued >= self.lifetime:
            return None
        return Session(editor_id, version, issued)
