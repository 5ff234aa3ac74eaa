"""Where ``newsletter run`` kept its jobs before the code moved to ``newsletter.schedule``.

APScheduler's job store holds each job as a text reference (``newsletter.scheduler:send_job``):
a deployment upgraded with jobs already stored finds them here, and the scheduler moves them to
their new reference on start (``schedule.runner._ensure_job``).
"""

from __future__ import annotations

from newsletter.schedule.runner import collect_job, send_job

__all__ = ["collect_job", "send_job"]
