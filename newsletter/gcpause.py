"""``paused_collector``: the cycle collector paused around allocation-heavy work.

Clustering makes hundreds of thousands of small sets and tuples, none of them in a cycle; the
collector's passes over them cost a tenth of its time or more. Memory is unaffected: objects
are still freed by reference counting. (Not for code that runs SQLAlchemy statements, whose
objects do form cycles: an import with the collector paused was slower and larger.)
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
