"""A mailer for each call in flight: the one the send was given, and more from its
``another()`` (SMTP: a connection each; SendGrid and the outbox serve several calls at once)."""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Iterator

from newsletter.delivery.mailers import Mailer
from newsletter.models import Batch, BatchResult

SWITCH_INTERVAL = 0.001  # seconds a thread may hold the interpreter while others wait


class Senders:
    """A mailer for each call in flight: the one given, and more from its ``another()``."""

    def __init__(self, mailer: Mailer) -> None:
        self.parallel = max(1, int(getattr(mailer, "parallel", 1)))
        self._first = mailer
        self._idle: queue.SimpleQueue[Mailer] = queue.SimpleQueue()
        self._idle.put(mailer)
        self._made: list[Mailer] = []
        self._lock = threading.Lock()

    def send(self, job: Batch) -> BatchResult:
        mailer = self._take()
        try:
            return mailer.send_batch(job)
        finally:
            self._idle.put(mailer)

    def _take(self) -> Mailer:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._made) + 1 < self.parallel:
                another = self._first.another()
                if another is not self._first:
                    self._made.append(another)
                return another
        return self._idle.get()

    def stop(self) -> None:
        """Every mailer finishes what it is doing and starts nothing more."""
        with self._lock:
            for mailer in (self._first, *self._made):
                mailer.stop()

    def close(self) -> None:
        """Close the extra mailers (the caller closes the one it gave)."""
        for mailer in self._made:
            mailer.close()


@contextlib.contextmanager
def switching_often() -> Iterator[None]:
    """The sender's thread claims and records between the request threads' turns: each database step
    lets go of the interpreter and waits for it again, by default up to 5 ms behind a thread
    encoding a request. A 1 ms switch interval keeps that wait short."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(before)
