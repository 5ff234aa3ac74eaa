"""A local stand-in for an OpenAI-compatible ``/v1/chat/completions`` (the hosted API, Ollama,
vLLM), answering like the real one, ``usage`` included, on 127.0.0.1.

What it answers is built from the request's own text (the outlets, headlines and teasers the
writer's prompt lists), in one of several modes: a grounded answer, one with a made-up number
or a made-up name, no answer at all until the test ends, a 500, a 429 with Retry-After, a body
that is not JSON, or JSON without choices. ``script`` sets the modes of the next requests; the
rest get ``mode``. Every request is recorded (its body and headers) before it is answered.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum, auto
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MADE_UP_NUMBER = "$987 million"
MADE_UP_NAME = "Jane Doerwald"


class Mode(Enum):
    GOOD = auto()  # a grounded answer: the headline and the outlet, figures spelt out
    MADE_UP_NUMBER = auto()  # the good answer with a figure no outlet gave
    MADE_UP_NAME = auto()  # the good answer with a person no outlet named
    HANG = auto()  # no answer until the server stops
    ERROR = auto()  # 500
    RATE_LIMITED = auto()  # 429, Retry-After: 30
    MALFORMED = auto()  # 200 with a body that is not JSON
    NO_CHOICES = auto()  # 200 with JSON but no choices
    CHATTY = auto()  # "Sure! Here is the summary: ...": a reply, not the text asked for
    LONG = auto()  # the good answer ten times over: too long
    ECHO_KEY = auto()  # 500 whose message repeats the Authorization header it was sent


@dataclass(frozen=True, slots=True)
class Received:
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def user(self) -> str:
        return str(self.body["messages"][-1]["content"])

    @property
    def system(self) -> str:
        return str(self.body["messages"][0]["content"])


def good_answer(user: str) -> str:
    """A grounded answer to the writer's prompt ``user``: for a storyline, its first headline
    and outlet ("$2.1bn" written "$2.1 billion", "3%" as "3 percent"); for the intro, the first
    two storylines' headlines, one a line."""
    outlets = re.findall(r"^Outlet: (.*)$", user, re.M)
    headlines = re.findall(r"^Headline: (.*)$", user, re.M)
    if user.startswith("Today's top storylines"):
        leads = [
            h
            for n, h in enumerate(headlines)
            if n == 0 or h != headlines[n - 1]  # a storyline's first report only
        ]
        return "\n".join(f"{_spelt(h).rstrip('.')}." for h in leads[:2])
    return f"{_spelt(headlines[0]).rstrip('.')}, {outlets[0]} reported."


def _spelt(text: str) -> str:
    text = re.sub(r"(\d)\s?bn\b", r"\1 billion", text)
    return re.sub(r"(\d)\s?%", r"\1 percent", text)


class WriterServer:
    def __init__(self, *, api_key: str = "", tokens_per_answer: int | None = None) -> None:
        self.api_key = api_key  # "": any key, or none, is accepted
        self.tokens_per_answer = tokens_per_answer  # None: about a token per 4 characters
        self.mode = Mode.GOOD
        self.script: deque[Mode] = deque()
        self.received: list[Received] = []
        self.release = threading.Event()  # hanging requests end when it is set
        self.before_answer: Callable[[], None] | None = None  # called before each answer
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                with server.lock:
                    server.received.append(
                        Received(body, {k.lower(): v for k, v in self.headers.items()})
                    )
                    mode = server.script.popleft() if server.script else server.mode
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": "not found"}})
                wanted = f"Bearer {server.api_key}"
                if server.api_key and self.headers.get("Authorization") != wanted:
                    return self._json(401, {"error": {"message": "invalid api key"}})
                if server.before_answer is not None:
                    server.before_answer()
                self._answer(mode, body)

            def _answer(self, mode: Mode, body: dict[str, Any]) -> None:
                if mode is Mode.HANG:
                    server.release.wait()
                    self.close_connection = True
                    return
                if mode is Mode.ERROR:
                    return self._json(500, {"error": {"message": "internal error"}})
                if mode is Mode.RATE_LIMITED:
                    error = {"error": {"message": "rate limit reached", "type": "requests"}}
                    return self._json(429, error, {"Retry-After": "30"})
                if mode is Mode.ECHO_KEY:
                    sent = self.headers.get("Authorization", "")
                    return self._json(500, {"error": {"message": f"cannot serve {sent}"}})
                if mode is Mode.MALFORMED:
                    return self._raw(200, b'{"id": "chatcmpl-1", "choices": [{"mess')
                if mode is Mode.NO_CHOICES:
                    return self._json(200, {"id": "chatcmpl-1", "object": "chat.completion"})
                user = str(body["messages"][-1]["content"])
                self._json(200, server.completion(body, _text(mode, user)))

            def _json(
                self, status: int, payload: object, headers: dict[str, str] | None = None
            ) -> None:
                self._raw(status, json.dumps(payload).encode(), headers)

            def _raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
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
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        """A chat completion as the API returns it, with its usage."""
        prompt = sum(len(str(m["content"])) for m in body["messages"]) // 4
        answer = len(text) // 4
        if self.tokens_per_answer is not None:
            prompt, answer = self.tokens_per_answer - 1, 1
        return {
            "id": f"chatcmpl-{len(self.received)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": answer,
                "total_tokens": prompt + answer,
            },
        }

    @property
    def requests(self) -> int:
        with self.lock:
            return len(self.received)


def _text(mode: Mode, user: str) -> str:
    good = good_answer(user)
    if mode is Mode.MADE_UP_NUMBER:
        return f"{good.rstrip('.')}, a deal worth {MADE_UP_NUMBER}."
    if mode is Mode.MADE_UP_NAME:
        return f"{good.rstrip('.')}, and {MADE_UP_NAME} welcomed it."
    if mode is Mode.CHATTY:
        return f"Sure! Here is the summary: {good}"
    if mode is Mode.LONG:
        return " ".join([good] * 10)
    return good


@contextmanager
def writer_server(**kwargs: Any) -> Iterator[WriterServer]:
    server = WriterServer(**kwargs)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
