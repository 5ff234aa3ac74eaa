"""SIGTERM and Ctrl-C, caught from the command's first moment.

``newsletter`` catches both signals before it loads its commands (``main``), so a signal
during start-up is kept rather than killing the process with no word. ``send`` and ``run``
treat it as a stop asked for (nothing new starts; what is under way finishes and is recorded),
wherever it arrives; every other command gives the signals their usual meaning back, and a
signal that came during start-up then takes effect as it would have.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop:
    """The stop a signal asks for: ``requested`` is set by SIGTERM or SIGINT once caught."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def catch(self) -> None:
        """From now on a signal sets ``requested`` instead of ending the process."""
        for sig in SIGNALS:
            if sig not in self._previous:
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.requested.set()

    def release(self) -> None:
        """The signals' usual meaning back; one caught meanwhile takes effect now."""
        if not self._previous:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self.requested.is_set():
            os.kill(os.getpid(), self.signum)

    @contextlib.contextmanager
    def caught(self) -> Iterator[threading.Event]:
        """Signals caught for the block (already so under ``main``); the stop's event."""
        mine = not self._previous and threading.current_thread() is threading.main_thread()
        if mine:
            self.catch()
        try:
            yield self.requested
        finally:
            if mine:  # a command run inside a test: the test's own handlers come back
                for sig, handler in self._previous.items():
                    signal.signal(sig, handler)
                self._previous.clear()
                self.requested.clear()


STOP = Stop()  # the process's one: signals belong to the whole process
