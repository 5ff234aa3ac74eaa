"""The sign-up limit per client address and the desk's sign-in limits (the ``limits``
library's one user)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import limits
import limits.errors
import limits.storage
import limits.strategies

from newsletter.errors import ConfigError
from newsletter.store import Store

MAX_WINDOW = timedelta(days=1)  # the database keeps no hit longer (``Locks.hit``)


class RateLimit:
    """At most ``rate`` accepted events per key (``"5/10 minutes"``) in a moving window,
    counted where ``storage`` says: ``database`` (the default: the store's ``rate_hits``, so
    every web instance on the database shares the count), or a storage of the ``limits``
    library (``memory://`` for one process; ``redis://...``)."""

    def __init__(
        self,
        rate: str,
        storage: str,
        *,
        store: Store,
        now: Callable[[], datetime],
        setting: str = "signup.per_ip",
    ) -> None:
        try:
            self._item = limits.parse(rate)
            counted = None if storage == "database" else limits.storage.storage_from_string(storage)
        except (ValueError, limits.errors.ConfigurationError) as exc:
            raise ConfigError(
                f"{setting} {rate!r} with signup.rate_limit_storage {storage!r}: {exc}",
                hint="Write the rate like '5/10 minutes' and the storage as database, memory:// "
                "or redis://host:6379 (its client library installed).",
            ) from None
        self._limiter = limits.strategies.MovingWindowRateLimiter(counted) if counted else None
        self._store, self._now = store, now
        self._window = timedelta(seconds=self._item.get_expiry())
        if counted is None and self._window > MAX_WINDOW:
            raise ConfigError(
                f"{setting} {rate!r}: a limit counted in the database spans a day at most",
                hint="Write the rate over a shorter time, like '5/10 minutes'.",
            )

    def blocked(self, key: str) -> bool:
        """Whether ``key`` has used up its events in the window (nothing is counted)."""
        if self._limiter is not None:
            return not self._limiter.test(self._item, key)
        since = self._now() - self._window
        return self._store.locks.hits_since(key, since) >= self._item.amount

    def retry_at(self, key: str) -> datetime:
        """When ``key`` may try again: once its oldest event in the window has left it."""
        now = self._now()
        if self._limiter is not None:
            reset = self._limiter.get_window_stats(self._item, key).reset_time
            return max(now, datetime.fromtimestamp(reset, now.tzinfo))
        oldest = self._store.locks.oldest_hit_since(key, now - self._window)
        return now if oldest is None else max(now, oldest + self._window)

    def record(self, key: str) -> None:
        """Count one event for ``key`` (a sign-up that was accepted)."""
        if self._limiter is not None:
            self._limiter.hit(self._item, key)
            return
        now = self._now()
        self._store.locks.hit(key, now=now, forget_before=now - self._window)
