"""The worker that drains the queue of transactional mail (``outgoing``), so that no web request
ever waits on a mail provider.

``drain`` sends what is due, one email at a time: a failure is retried with backoff (30 s,
doubling, at most an hour apart) and given up after ``MAX_ATTEMPTS``; an email for a reader who
is no longer pending is dropped. ``Worker`` runs ``drain`` in a thread of the web process,
woken at once by a new sign-up and every ``interval`` seconds otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.mailers import Mailer
from newsletter.models import SubscriberStatus
from newsletter.store import Store
from newsletter.subscriptions import send_confirmation

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM = timedelta(minutes=5)  # a claimed email is retried after this if its sender died


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 30 s, doubling, at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def drain(
    config: Config, store: Store, mailer: Mailer, *, now: Callable[[], datetime], limit: int = 50
) -> int:
    """Send the due emails; returns how many went."""
    sent = 0
    for mail in store.due_mail(now=now(), limit=limit):
        if not store.claim_mail(mail.id, now=now(), until=now() + CLAIM):
            continue  # another worker (another web process) has it
        reader = store.subscriber_by_id(mail.subscriber_id)
        if reader is None or reader.status != SubscriberStatus.PENDING:
            store.mail_failed(
                mail.id, error="the reader is no longer pending", retry_at=None, now=now()
            )
            continue
        try:
            send_confirmation(config, mailer, reader, sectors=mail.sectors, day=now().date())
        except (NewsletterError, OSError, ValueError) as exc:
            attempts = mail.attempts + 1
            retry = now() + retry_delay(attempts) if attempts < MAX_ATTEMPTS else None
            error = getattr(exc, "message", str(exc))
            store.mail_failed(mail.id, error=error, retry_at=retry, now=now())
            logger.warning("confirmation to reader %s failed (%s): %s", reader.id, attempts, error)
            continue
        store.mail_sent(mail.id, now=now())
        sent += 1
    return sent


class Worker:
    """``work`` (``drain``, applying provider events) in a background thread of the web
    process: run at start, when woken by ``wake`` and every ``interval`` seconds; stopped by
    ``stop``."""

    def __init__(self, work: Callable[[], object], *, name: str, interval: float = 5.0) -> None:
        self._work = work
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._work()
            except Exception:  # the worker must outlive any one failure; it is logged
                logger.exception("the %s worker failed; it goes on", self._thread.name)
            self._wake.wait(self._interval)
            self._wake.clear()
