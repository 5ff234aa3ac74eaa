"""The render worker's server is started ahead of a large send, never for a small one."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.records import NewReader
from newsletter.store import Store
from tests.conftest import NOW, ROOT

# run in a fresh interpreter: a forkserver is one per process, and this one may have one
PROBE = """
import os, sys
from multiprocessing import forkserver
from newsletter.delivery.variants import warm_renderer
from newsletter.store import Store
store = Store.open(sys.argv[1])
warm_renderer(store)
pid = forkserver._forkserver._forkserver_pid
if pid is not None:
    os.kill(pid, 0)  # it runs
print("started" if pid else "not started")
"""


@pytest.mark.parametrize(("readers", "many"), [(40, True), (5, False)])
def test_the_render_workers_server_starts_ahead_only_for_a_send_that_may_need_it(
    tmp_path: Path, readers: int, many: bool
) -> None:
    """With a second core and 32 readers or more (as many variants, perhaps)."""
    expected = "started" if many and (os.cpu_count() or 1) >= 2 else "not started"
    url = f"sqlite:///{tmp_path / 'n.db'}"
    store = Store.open(url)
    store.readers.bulk_import(
        [
            NewReader(f"r{n}@example.com", "", ("oil-gas",), f"token-{n}-{'x' * 24}")
            for n in range(readers)
        ],
        [],
        now=NOW,
    )
    store.close()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


ARENAS = """
import ctypes, sys, tempfile, threading
from newsletter.runtime import few_malloc_arenas
if sys.argv[1] == "few":
    assert few_malloc_arenas()
together = threading.Barrier(8)
def work():
    together.wait()  # all alive at once: none takes over the arena of one that ended
    # above the small-object allocator and below malloc's own mmap threshold: from an arena
    kept = [bytearray(50_000) for _ in range(20)]
    together.wait()
    del kept
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(out.name).read().count("<heap nr="))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas only")
def test_threads_share_two_malloc_arenas_once_the_command_has_started() -> None:
    """Each thread that allocates would get a malloc arena of its own (up to eight per core),
    keeping what it freed: the command limits them to two before its threads start."""

    def heaps(mode: str) -> int:
        run = subprocess.run(
            [sys.executable, "-c", ARENAS, mode],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        return int(run.stdout.strip())

    assert heaps("few") <= 2
    assert heaps("default") > 2  # the same threads without the limit: one arena each
