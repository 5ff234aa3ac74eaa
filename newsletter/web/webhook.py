"""``POST /webhooks/sendgrid``: SendGrid's Event Webhook, signed batches only.

A batch is refused with 403 (and nothing stored) unless its ECDSA signature verifies with the
key from ``delivery.sendgrid.webhook_key_env`` and its timestamp is within
``webhook_max_age_seconds`` of now (a captured batch cannot be replayed later). A valid batch is
stored (each event once, by ``sg_event_id``) and answered at once; a background worker applies
it to the readers. Unknown event types are stored and change nothing; SendGrid is never given a
500 for a batch it will only retry.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from newsletter.config import Config
from newsletter.delivery.events import sendgrid_events, with_readers
from newsletter.delivery.mailers.sendgrid import WebhookKey
from newsletter.delivery.outgoing import Worker
from newsletter.records import ProviderEvent
from newsletter.store import Store
from newsletter.web.forms import BadRequest, body_of

logger = logging.getLogger(__name__)

PATH = "/webhooks/sendgrid"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class Webhook:
    def __init__(
        self, config: Config, store: Store, applier: Worker, *, now: Callable[[], datetime]
    ) -> None:
        settings = config.file.delivery.sendgrid
        self.store, self.applier, self.now = store, applier, now
        self.max_age = settings.webhook_max_age_seconds
        self.max_bytes = settings.webhook_max_bytes
        self.key_env = settings.webhook_key_env
        key = os.environ.get(self.key_env, "")
        self.key = WebhookKey(key) if key else None

    def routes(self) -> list[Route]:
        return [Route(PATH, self.post, methods=["POST"])]

    async def post(self, request: Request) -> Response:
        if self.key is None:
            logger.warning("a SendGrid event batch was refused: %s is not set", self.key_env)
            return _refused(f"signed events only, and no verification key is set ({self.key_env})")
        try:
            body = await body_of(request, self.max_bytes)
        except BadRequest:
            return JSONResponse({"error": f"a batch is at most {self.max_bytes} bytes"}, 413)
        signature = request.headers.get(SIGNATURE, "")
        stamp = request.headers.get(TIMESTAMP, "")
        if not signature or not stamp.isdigit():
            return _refused(f"the {SIGNATURE} and {TIMESTAMP} headers are required")
        age = abs(self.now().timestamp() - int(stamp))
        if age > self.max_age:
            return _refused("the batch's timestamp is too old (or in the future)")
        if not await run_in_threadpool(self.key.verifies, body, signature, stamp):
            return _refused("the signature does not verify")
        try:
            found, skipped = sendgrid_events(json.loads(body), now=self.now())
        except (ValueError, RecursionError) as exc:
            return JSONResponse({"error": f"the body is not a batch of events: {exc}"}, 400)
        stored = await run_in_threadpool(self._store, found)
        self.applier.wake()
        return JSONResponse({"received": len(found), "new": stored, "ignored": skipped})

    def _store(self, found: list[ProviderEvent]) -> int:
        return self.store.events.record_events(with_readers(self.store, found), now=self.now())


def _refused(why: str) -> Response:
    return JSONResponse({"error": why}, 403)
