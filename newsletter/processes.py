"""Worker processes for CPU-bound stages (parsing feeds, rendering variants), started light.

A pool's workers start from a clean process (forkserver: never forked from a threaded one)
with only the module they work in loaded, and never import the ``newsletter`` command's main
module (``light_workers``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def process_pool(
    workers: int,
    *,
    preload: str,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """A pool whose workers have ``preload`` imported, each set up by ``initializer``. Start
    its workers (they start with the first job) inside ``light_workers``."""
    context = multiprocessing.get_context("forkserver")
    # (a forkserver already running, started by another pool, imports the module on demand)
    context.set_forkserver_preload([preload])
    return ProcessPoolExecutor(workers, context, initializer, initargs)


@contextlib.contextmanager
def light_workers() -> Iterator[None]:
    """While it lasts, new worker processes do not import this process's main module.

    multiprocessing has each new worker import the parent's ``__main__`` first (for the
    ``newsletter`` command: the whole CLI, with SQLAlchemy, Starlette and the rest) so that
    functions defined there can be unpickled; parsing needs none of it: ``parse_job`` lives in
    ``newsletter.parse``, which imports only feedparser, nh3 and our text helpers.
    """
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__spec__", "__file__") if hasattr(main, k)}
    try:
        if main is not None:
            main.__spec__ = None
            if "__file__" in saved:
                del main.__file__
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)
