"""The ``newsletter`` command: the group in ``main``, one module per command (or group of
commands), and ``common`` for what they share. Command modules import only ``common``."""

from newsletter.cli.main import cli, main

__all__ = ["cli", "main"]
