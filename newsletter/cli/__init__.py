"""The ``newsletter`` command: the group in ``main``, one module per command (or group of
commands), and ``common`` for what they share. Command modules import only ``common``.

``main`` catches SIGTERM and Ctrl-C before the commands are loaded (``stopping``), so that a
signal during start-up is never a silent death; the group is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from newsletter.cli.stopping import STOP
from newsletter.runtime import few_malloc_arenas

if TYPE_CHECKING:
    from newsletter.cli.main import cli

__all__ = ["cli", "main"]


def main() -> None:
    STOP.catch()
    few_malloc_arenas()  # before any thread: see ``runtime``
    from newsletter.cli.main import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "cli":
        from newsletter.cli.main import cli

        return cli
    raise AttributeError(name)
