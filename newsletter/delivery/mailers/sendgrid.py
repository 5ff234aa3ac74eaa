"""SendGrid: one request per batch of at most 1,000 readers, one personalization each.

Each reader's links and greeting go as substitutions, so the variant is sent as is. Several
requests are in flight at once (``parallel``, from threads sharing this mailer: the client makes
a connection per request). Rate limits (429) hold every request of the send until
``X-RateLimit-Reset`` (or ``Retry-After``), then all go on; 5xx answers and timeouts
are retried with backoff, then the batch fails and the send goes on; 400 fails the batch with
SendGrid's message; 401 and 403 stop the whole send, since no batch can succeed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import replace
from email.utils import parseaddr
from typing import Any

import sendgrid
from python_http_client import exceptions as http_errors

from newsletter.config.settings import SendgridConfig
from newsletter.delivery.mailers.message import to_header
from newsletter.delivery.mailers.pacing import Pause
from newsletter.delivery.mailers.retry import Transient, retrying
from newsletter.delivery.mailers.sendgrid_body import body
from newsletter.errors import ConfigError, DeliveryError
from newsletter.models import Batch, BatchResult

logger = logging.getLogger(__name__)

MAX_WAIT = 120.0  # seconds: the longest a rate limit is waited out in one go

_SETTINGS = SendgridConfig()  # the one source of the defaults below: ``delivery.sendgrid``


class _Secret(str):
    """The API key's header value, which the client library's debug message of a request's
    headers shows masked."""

    def __repr__(self) -> str:
        return "'Bearer ***'"


class _Payload(bytes):
    """A request's bytes, which name only their size when formatted: the client library
    formats each payload into a debug message whether or not debug is logged (1.5 ms for a
    request of 1,000 readers, in the request threads), and a log must not hold readers'
    addresses and links."""

    def __format__(self, spec: str) -> str:
        return f"<{len(self):,} bytes>"


class _Body:
    """A request's JSON text as the client library takes it: encoded (once, with no copy of
    the text) into a ``_Payload``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _Payload(self.text, encoding, errors)


class _Stopped(Exception):
    """A stop was asked for before the request (or its retry) started."""


class SendgridMailer:
    name = "sendgrid"
    max_batch = 1000

    def __init__(
        self,
        *,
        api_key: str,
        api_host: str,
        from_address: str,
        timeout: float = _SETTINGS.timeout_seconds,
        max_retries: int = _SETTINGS.max_retries,
        backoff: float = _SETTINGS.backoff_seconds,
        parallel: int = _SETTINGS.concurrency,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        list_id: str = "",
        track_opens: bool = False,
        track_clicks: bool = False,
    ) -> None:
        self._client = sendgrid.SendGridAPIClient(api_key=api_key, host=api_host.rstrip("/"))
        self._key = api_key  # blanked in what an answer says, should a proxy quote it
        self._client.client.timeout = timeout
        # the body goes as the JSON text ``payload`` wrote: with this type the client sends a
        # str as it is, instead of encoding a dict again
        headers = self._client.client.request_headers
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers["Authorization"] = _Secret(headers["Authorization"])  # masked in a debug line
        self.api_host = api_host
        name, address = parseaddr(from_address)
        self.sender = {"email": address, **({"name": name} if name else {})}
        self.max_retries, self.backoff = max_retries, backoff
        self._stopping = threading.Event()
        # waits (retries, rate limits) end early on a stop; tests give their own sleep
        self._sleep: Callable[[float], object] = sleep or self._stopping.wait
        self._clock = clock
        self.parallel = parallel
        self.list_id = list_id
        # SendGrid's own tracking: off unless asked for (readers' privacy)
        self.tracking = {
            "open_tracking": {"enable": track_opens},
            "click_tracking": {"enable": track_clicks, "enable_text": False},
            "subscription_tracking": {"enable": False},  # our own unsubscribe links instead
        }
        self._pause = Pause(clock=clock, sleep=self._sleep)  # shared by the requests in flight

    def another(self) -> SendgridMailer:
        """The mailer for another request in flight: this one (each request is its own)."""
        return self

    def stop(self) -> None:
        self._stopping.set()

    def payload(self, batch: Batch) -> str:
        """The request for ``batch``, as the JSON text that is sent."""
        return body(batch, sender=self.sender, tracking=self.tracking, list_id=self.list_id)

    def _said(self, exc: http_errors.HTTPError) -> str:
        """What an error answer says, the API key blanked (a proxy may quote it back)."""
        said = _message(exc)
        return said.replace(self._key, "[key]") if self._key else said

    def send_batch(self, batch: Batch) -> BatchResult:
        if len(batch.recipients) > self.max_batch:
            raise ValueError(f"a SendGrid batch holds at most {self.max_batch} readers")
        failed: dict[int, str] = {}
        good = []
        for r in batch.recipients:  # a reader SendGrid would refuse fails alone, before it
            try:
                to_header(r.name, r.email)
                good.append(r)
            except ValueError as exc:
                failed[r.delivery_id] = f"the address {r.email!r} cannot be sent to: {exc}"
        for _ in range(2):  # once more without the readers a 400 names
            if not good:
                return BatchResult(sent={}, failed=failed)
            result, named = self._post(replace(batch, recipients=tuple(good)))
            if not named:
                return replace(result, failed={**failed, **result.failed})
            refused = {good[i].delivery_id for i in named}
            failed.update({d: e for d, e in result.failed.items() if d in refused})
            good = [r for r in good if r.delivery_id not in refused]
        error = "SendGrid refused the request twice, naming other readers each time"
        return BatchResult(sent={}, failed={**failed, **{r.delivery_id: error for r in good}})

    def _post(self, batch: Batch) -> tuple[BatchResult, set[int]]:
        """One request, retried on 5xx and timeouts; a 400 returns the personalizations it
        names (their readers failed with its message, the others not sent)."""
        body = self.payload(batch)
        attempts = self.max_retries + 1
        try:
            for attempt in retrying(attempts=attempts, backoff=self.backoff, sleep=self._sleep):
                with attempt:
                    if self._stopping.is_set():  # no request (or retry) starts after a stop
                        raise _Stopped
                    return self._request(batch, body)
        except _Stopped:
            unsent = tuple(r.delivery_id for r in batch.recipients)
            return BatchResult(
                {}, {}, unsent=unsent, stop_reason="asked to stop", stopped=True
            ), set()
        except Transient as exc:
            error = f"{exc}, {attempts} attempts"
            return BatchResult(
                sent={}, failed={r.delivery_id: error for r in batch.recipients}
            ), set()
        raise AssertionError("not reached: the last try returns or raises")

    def _request(self, batch: Batch, body: str) -> tuple[BatchResult, set[int]]:
        """One try (a 429 waits for the reset and goes again, uncounted); ``Transient`` on a
        5xx or no answer."""
        recipients = batch.recipients
        while True:
            self._pause.wait(self._stopping.is_set)  # a rate limit one request met holds all
            if self._stopping.is_set():
                raise _Stopped
            try:
                response = self._client.client.mail.send.post(request_body=_Body(body))
            except (http_errors.UnauthorizedError, http_errors.ForbiddenError) as exc:
                raise DeliveryError(
                    f"SendGrid refused the API key (HTTP {exc.status_code}): {self._said(exc)}",
                    hint="Check the key in the environment variable named by "
                    "delivery.sendgrid.api_key_env, and that it may send mail.",
                ) from None
            except http_errors.TooManyRequestsError as exc:
                wait = self._rate_limit_wait(exc)
                logger.info("SendGrid rate limit: every request waits %.1f s", wait)
                self._pause.hold(wait)
                continue
            except http_errors.HTTPError as exc:
                status = int(getattr(exc, "status_code", 0) or 0)
                if status >= 500:
                    raise Transient(f"SendGrid HTTP {status}") from None
                named = _named_personalizations(exc, len(recipients))
                error = f"SendGrid HTTP {status}: {self._said(exc)}"
                if not named:
                    return BatchResult(
                        sent={}, failed={r.delivery_id: error for r in recipients}
                    ), set()
                messages = _messages_by_index(exc)
                failed = {
                    recipients[i].delivery_id: f"SendGrid HTTP {status}: " + messages.get(i, error)
                    for i in named
                }
                return BatchResult(sent={}, failed=failed), named
            except (TimeoutError, urllib.error.URLError, OSError) as exc:
                raise Transient(f"SendGrid did not answer: {exc}") from None
            message_id = response.headers.get("X-Message-Id", "") if response.headers else ""
            return BatchResult(
                # the request's id for each of its readers (their events name them by the
                # custom_args): one ledger UPDATE per request, not one per reader
                sent=dict.fromkeys((r.delivery_id for r in recipients), message_id),
                failed={},
            ), set()

    def _rate_limit_wait(self, exc: http_errors.HTTPError) -> float:
        headers = getattr(exc, "headers", None) or {}
        reset = headers.get("X-RateLimit-Reset")
        if reset and reset.strip().isdigit():
            return min(MAX_WAIT, max(0.0, float(reset) - self._clock()) + 0.05)
        retry = headers.get("Retry-After")
        if retry and retry.strip().replace(".", "", 1).isdigit():
            return min(MAX_WAIT, float(retry))
        return 1.0

    def close(self) -> None:
        pass


def _message(exc: http_errors.HTTPError) -> str:
    body = getattr(exc, "body", b"") or b""
    try:
        data = json.loads(body)
        return "; ".join(str(e.get("message", e)) for e in data.get("errors", [])) or str(data)
    except (ValueError, AttributeError, TypeError):
        return body.decode("utf-8", "replace")[:300] if isinstance(body, bytes) else str(body)


_PERSONALIZATION = re.compile(r"personalizations\.(\d+)\b")


def _errors(exc: http_errors.HTTPError) -> list[dict[str, Any]]:
    body = getattr(exc, "body", b"") or b""
    try:
        data = json.loads(body)
        return [e for e in data.get("errors", []) if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        return []


def _messages_by_index(exc: http_errors.HTTPError) -> dict[int, str]:
    out: dict[int, str] = {}
    for error in _errors(exc):
        text = f"{error.get('field', '')} {error.get('message', '')}"
        for found in _PERSONALIZATION.findall(text):
            out.setdefault(int(found), str(error.get("message", "")))
    return out


def _named_personalizations(exc: http_errors.HTTPError, count: int) -> set[int]:
    """The personalizations a 400 names (``personalizations.105.to.0.email``), within range."""
    return {i for i in _messages_by_index(exc) if 0 <= i < count}


class WebhookKey:
    """SendGrid's Event Webhook verification key: checks a signed batch with the ``sendgrid``
    library's own ``EventWebhook`` helper (ECDSA P-256 over SHA-256 of timestamp + body)."""

    def __init__(self, public_key: str) -> None:
        from sendgrid.helpers.eventwebhook import EventWebhook

        try:
            self._hook = EventWebhook(public_key.strip())
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"the SendGrid webhook verification key cannot be read: {exc}",
                hint="Copy the whole base64 key from SendGrid's Event Webhook settings "
                "(Signature Verification) into the environment variable.",
            ) from None

    def verifies(self, body: bytes, signature: str, timestamp: str) -> bool:
        try:
            payload = body.decode("utf-8")
            return bool(self._hook.verify_signature(payload, signature, timestamp))
        except (UnicodeDecodeError, ValueError, TypeError):  # bad base64, a broken signature
            return False
