"""A local stand-in for SendGrid's ``/v3/mail/send`` that enforces the documented limits.

At most 1,000 personalizations and 1,000 recipients per request, each address once per
request, the required fields (from, subject, content, personalizations with ``to``), content
types in order (text/plain first), at most 10,000 bytes of substitutions and of custom_args per
personalization, 30 MB per request, a valid API key. Faults can be queued: a 429 with a reset
time, 500, a silent wait longer than the client's timeout, 400.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_BYTES = 30 * 1024 * 1024


def problems(body: dict[str, Any]) -> list[str]:
    """What SendGrid would refuse in this request (empty when it is acceptable)."""
    errors: list[str] = []
    people = body.get("personalizations")
    if not isinstance(people, list) or not people:
        return [
            "The personalizations field is required and must have at least one personalization."
        ]
    if len(people) > MAX_PERSONALIZATIONS:
        errors.append("The personalizations field must have at most 1000 personalizations.")
    seen: set[str] = set()
    recipients = 0
    for index, p in enumerate(people):
        if not p.get("to"):
            errors.append("The to array is required for all personalization objects.")
        for kind in ("to", "cc", "bcc"):
            for n, person in enumerate(p.get(kind, [])):
                address = str(person.get("email", "")).lower()
                if "@" not in address or not address.isascii():
                    field = f"personalizations.{index}.{kind}.{n}.email"
                    errors.append(f'{field} must match format "email"')
                if address in seen:
                    errors.append(f"Each email address must be unique in a request: {address}.")
                seen.add(address)
                recipients += 1
        for key in ("substitutions", "custom_args"):
            if _longer_than(p.get(key, {}), 10_000):
                errors.append(f"The {key} of a personalization must be at most 10000 bytes.")
    if recipients > MAX_RECIPIENTS:
        errors.append("The total number of recipients must be at most 1000.")
    if not body.get("from", {}).get("email"):
        errors.append("The from object must be provided for every email send.")
    if not body.get("subject") and not all(p.get("subject") for p in people):
        errors.append("The subject is required.")
    content = body.get("content")
    if not content or not all(c.get("type") and c.get("value") for c in content):
        errors.append("The content value must be a string at least one character in length.")
    elif any(c["type"] == "text/plain" for c in content) and content[0]["type"] != "text/plain":
        errors.append("If present, text/plain content must be first.")
    if len(body.get("categories", [])) > 10:
        errors.append("Too many categories: at most 10.")
    return errors


def _longer_than(value: Any, limit: int) -> bool:
    """Whether ``value`` is longer than ``limit`` as JSON. A dict of strings is measured by a
    bound first (a character is at most 12 in JSON: an escaped surrogate pair): the benchmarks
    run this server beside the sender, on the same cores, and encoding every reader's values
    again cost it a third of its CPU."""
    if type(value) is dict:
        bound = 2
        for key, item in value.items():
            if type(key) is not str or type(item) is not str:
                break
            bound += 12 * (len(key) + len(item)) + 6
        else:
            if bound <= limit:
                return False
    return len(json.dumps(value)) > limit


def _checked(raw: bytes) -> tuple[Any, list[str]] | None:
    """A request's body and its problems, or None when it cannot be checked (the handler
    then fails as before, after the answer's delay)."""
    try:
        body = json.loads(raw)
        return body, problems(body)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def delivered(body: dict[str, Any]) -> list[dict[str, str]]:
    """What each reader of an accepted request receives, as SendGrid makes it: every
    substitution key replaced wherever it occurs in the subject, the contents and the
    headers (SendGrid substitutes anywhere in the text, not at known places)."""
    out = []
    for p in body["personalizations"]:
        subs: dict[str, str] = p.get("substitutions", {})

        def fill(text: str, subs: dict[str, str] = subs) -> str:
            for key, value in subs.items():
                text = text.replace(key, value)
            return text

        copy = {"to": p["to"][0]["email"], "subject": fill(p.get("subject", body["subject"]))}
        for part in body["content"]:
            copy[part["type"]] = fill(part["value"])
        for key, value in p.get("headers", {}).items():
            copy[key] = fill(value)
        out.append(copy)
    return out


class SendgridServer:
    def __init__(self, api_key: str = "SG.test-key", *, keep_bodies: bool = True) -> None:
        self.api_key = api_key
        self.keep_bodies = keep_bodies
        self.faults: deque[tuple[str, float]] = deque()
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self.arrivals = 0  # requests that reached the handler, counted on arrival
        self.accepted_count = 0
        self.recipients: dict[str, int] = {}
        self.most_copies = 0  # the most copies any one reader got
        self.delay = 0.0  # seconds before each answer
        self.in_flight = 0  # requests being answered now
        self.most_in_flight = 0  # the most ever answered at once
        # when set, the first requests wait until this many are in flight together (proof of
        # concurrency without a clock); a sender sending one at a time breaks it, gets 500s
        self.gather: threading.Barrier | None = None
        # called with the number of requests accepted so far, before the 202 is answered
        self.on_accept: Callable[[int], None] | None = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                with server.lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                    # counted as it arrives: ``requests`` grows only past the gathering, so a
                    # fifth request arriving before the first four counted would wait again
                    server.arrivals += 1
                    number = server.arrivals
                self.counted = True  # in ``in_flight`` until its answer starts going out
                try:
                    gather = server.gather
                    if gather is not None and number <= gather.parties:
                        try:
                            gather.wait(timeout=30)
                        except threading.BrokenBarrierError:
                            self.rfile.read(int(self.headers.get("Content-Length", "0")))
                            with server.lock:
                                server.requests += 1
                            return self._answer(500, {"errors": [{"message": "alone"}]})
                    self._post()
                finally:
                    self._done()

            def _done(self) -> None:
                """No longer in flight: before the answer is written, as the client may send
                its next request the moment it has read this one's answer."""
                if getattr(self, "counted", False):
                    self.counted = False
                    with server.lock:
                        server.in_flight -= 1

            def _post(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with server.lock:
                    server.requests += 1
                    fault = server.faults.popleft() if server.faults else None
                # the body is read and checked while the answer is due, as a provider's own
                # work is part of its latency: the answer comes ``delay`` after the request
                checked = _checked(raw) if length <= MAX_BYTES else None
                if server.delay:
                    time.sleep(max(0.0, server.delay - (time.monotonic() - arrived)))
                if self.path != "/v3/mail/send":
                    return self._answer(404, {"errors": [{"message": "not found"}]})
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._answer(
                        401,
                        {
                            "errors": [
                                {
                                    "message": "The provided "
                                    "authorization grant is invalid, expired, or revoked"
                                }
                            ]
                        },
                    )
                if fault is not None:
                    kind, value = fault
                    if kind == "429":
                        reset = int(time.time() + value)
                        return self._answer(
                            429,
                            {"errors": [{"message": "too many requests"}]},
                            {"X-RateLimit-Reset": str(reset)},
                        )
                    if kind == "500":
                        return self._answer(500, {"errors": [{"message": "internal error"}]})
                    if kind == "timeout":
                        time.sleep(value)
                        return self._answer(503, {"errors": [{"message": "late"}]})
                    if kind == "401":
                        return self._answer(401, {"errors": [{"message": "key revoked"}]})
                    if kind == "echo":  # a proxy that quotes the request's key back
                        said = f"invalid grant: {self.headers.get('Authorization')}"
                        return self._answer(int(value), {"errors": [{"message": said}]})
                    if kind == "400":
                        return self._answer(400, {"errors": [{"message": "forced bad request"}]})
                if length > MAX_BYTES:
                    return self._answer(413, {"errors": [{"message": "too large"}]})
                if checked is None:  # not checked ahead: the same error, at the same point
                    body = json.loads(raw)
                    found = problems(body)
                else:
                    body, found = checked
                if found:
                    listed = [
                        {
                            "message": m,
                            "field": m.split(" ")[0] if m.startswith("personal") else None,
                        }
                        for m in found
                    ]
                    return self._answer(400, {"errors": listed})
                with server.lock:
                    seen = server.recipients
                    for p in body["personalizations"]:
                        for person in p["to"]:
                            address = person["email"].lower()
                            copies = seen[address] = seen.get(address, 0) + 1
                            if copies > server.most_copies:
                                server.most_copies = copies
                    if server.keep_bodies:
                        server.accepted.append(body)
                    server.accepted_count += 1
                    count = server.accepted_count
                if server.on_accept is not None:
                    server.on_accept(count)
                self._answer(202, None, {"X-Message-Id": secrets.token_hex(8)})

            def _answer(
                self, status: int, payload: object, headers: dict[str, str] | None = None
            ) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self._done()
                try:
                    self.send_response(status)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@contextmanager
def sendgrid_server(**kwargs: Any) -> Iterator[SendgridServer]:
    server = SendgridServer(**kwargs)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
