"""One pause that every request of a send honours: a rate limit seen by one slows them all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pause:
    """Requests wait in ``wait`` until the latest ``hold`` is over.

    SendGrid's 429 says when the limit resets: the request that got it holds every other
    request of the send until then, instead of each finding the limit on its own.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """No request starts in the next ``seconds`` (a longer hold already set stays)."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def wait(self, stopped: Callable[[], bool] = lambda: False) -> float:
        """Wait out the current hold, if any (or until ``stopped``); the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                left = self._until - self._clock()
            if left <= 0 or stopped():
                return waited
            self._sleep(left)
            waited += left
