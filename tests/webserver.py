"""Run an ASGI app under a real uvicorn server on 127.0.0.1, in a thread, for one test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from newsletter.store import Store


@contextmanager
def running(app: Any) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # as `newsletter serve` runs it: uvicorn itself believes no X-Forwarded-For
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test web server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def signed_up(store: Store, timeout: float = 10) -> None:
    """Wait until the app's worker has carried out every sign-up the web queued (a sign-up's
    request only queues it)."""
    deadline = time.monotonic() + timeout
    while store.outgoing.queued_signups():
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not carry out the queued sign-ups")
        time.sleep(0.01)
