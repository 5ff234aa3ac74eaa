"""How CPU-heavy stages use the machine: worker processes started light (parsing feeds,
rendering variants), the cycle collector paused around allocation-heavy work, and a send's
long-lived objects left out of the collector's full passes while it runs (``long_lived``).

A pool's workers start from a clean process (forkserver: never forked from a threaded one)
with only the module they work in loaded, and never import the ``newsletter`` command's main
module (``light_workers``).

Clustering makes hundreds of thousands of small sets and tuples, none of them in a cycle; the
collector's passes over them cost a tenth of its time or more (``paused_collector``). Memory is
unaffected: objects are still freed by reference counting. (Not for code that runs SQLAlchemy
statements, whose objects do form cycles: an import with the collector paused was slower and
larger.)
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter: how many malloc arenas threads may use
MALLOC_ARENAS = 2


def few_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Have this process's threads share ``arenas`` malloc arenas; True when the C library
    took the setting (glibc), False where there is no such setting (macOS; musl ignores it).

    glibc gives a thread that allocates while another does an arena of its own, up to eight
    per core, and an arena keeps what its threads freed for them. A send's request threads
    each build and send bodies of a few hundred kilobytes: at 20,000 readers in flight their
    arenas held 60 MB more at the send's peak than two shared arenas do, at no cost in time
    (the interpreter's lock has the threads allocate in turn anyway). Called first thing by
    the command, before any thread starts."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


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


def warm_process_pool(preload: str) -> None:
    """Start the server that ``process_pool``'s workers are forked from, with ``preload``
    imported, while this process does other work: the pool's first worker then starts at once
    rather than waiting for the server's own start and imports (0.3 s for the renderer)."""
    multiprocessing.get_context("forkserver").set_forkserver_preload([preload])
    with light_workers():
        forkserver.ensure_running()


@contextlib.contextmanager
def light_workers() -> Iterator[None]:
    """While it lasts, new worker processes do not import this process's main module.

    multiprocessing has each new worker import the parent's ``__main__`` first (for the
    ``newsletter`` command: the whole CLI, with SQLAlchemy, Starlette and the rest) so that
    functions defined there can be unpickled; the workers need none of it: their jobs live in
    modules that import only what the job needs (``ingest.parse``, ``edition.render``).
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


@contextlib.contextmanager
def long_lived() -> Iterator[Callable[[], None]]:
    """Within it, what exists when the function it gives is called (the modules, the config,
    a send's frozen edition) is left out of the cycle collector's full passes (``gc.freeze``);
    after it, all is collected as before (a scheduler sends day after day in one process).
    A 100,000-reader send's full passes went over those objects eight times, 0.4 s with every
    thread stopped; with them left out, 0.06 s."""
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
