"""Retries with exponential backoff for the mailers (tenacity), the sleep injectable so tests
never wait: a ``Transient`` failure is tried again after ``backoff``, ``2 x backoff``, ...
seconds, and the last one is raised when the tries run out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tenacity


class Transient(Exception):
    """A failure worth another try: a 5xx, a timeout, a dropped connection, an SMTP 4xx."""


def retrying(*, attempts: int, backoff: float, sleep: Callable[[float], Any]) -> tenacity.Retrying:
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff, exp_base=2, min=0, max=3600),
        retry=tenacity.retry_if_exception_type(Transient),
        sleep=sleep,
        reraise=True,
    )
