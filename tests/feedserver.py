"""Real HTTP servers on loopback (port 0) that serve canned, slow, huge or hostile responses."""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/rss+xml"})
    delay: float = 0.0  # seconds to wait before answering
    drip: float = 0.0  # seconds between single bytes of the body
    stream: int = 0  # send this many filler bytes after the body, with no Content-Length
    etag: str | None = None  # answer 304 to a matching If-None-Match
    last_modified: str | None = None  # answer 304 to a matching If-Modified-Since


@dataclass
class Tracker:
    """In-flight requests, shared by servers, to check concurrency limits."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    peak: int = 0

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


class FeedServer:
    def __init__(self, host: str = "127.0.0.1", tracker: Tracker | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.tracker = tracker or Tracker()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers.items())))
                server.tracker.enter()
                try:
                    self._answer(server.routes.get(self.path))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    server.tracker.leave()

            def _answer(self, route: Route | None) -> None:
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.delay:
                    time.sleep(route.delay)
                if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                    route.last_modified
                    and self.headers.get("If-Modified-Since") == route.last_modified
                ):
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                if not route.stream:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if route.drip:
                    for byte in route.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(route.drip)
                    return
                self.wfile.write(route.body)
                chunk = b" " * 65536
                for _ in range(route.stream // len(chunk)):
                    self.wfile.write(chunk)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.base = f"http://{host}:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kwargs: object) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(data, **kwargs)  # type: ignore[arg-type]
        return self.url(path)


def http_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


@contextmanager
def serve(host: str = "127.0.0.1", tracker: Tracker | None = None) -> Iterator[FeedServer]:
    server = FeedServer(host, tracker)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
