"""A real HTTP server on 127.0.0.1 for tests: feeds, article pages, fake APIs.

Runs in its own thread (ThreadingHTTPServer), so it serves both async tests and
subprocesses (`briefbot poll --once`). Routes map a path to a static `Reply` or to a
callable `(Request) -> Reply`. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    # Seconds to sleep before sending the body, or between chunks when body is an iterable.
    delay: float = 0.0
    # Sent only once this event is set: a reply held until the test releases it (a fetch or API
    # call that is in flight for as long as the test needs, with no race against a clock).
    hold: threading.Event | None = None

    @classmethod
    def json(cls, data, status: int = 200, headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, json.dumps(data).encode(), headers or {}, "application/json")


Handler = Callable[[Request], Reply]

# How long a held reply waits for its release at most: a guard against a test that forgets it.
HOLD_LIMIT = 60.0


class _QueuedServer(ThreadingHTTPServer):
    request_queue_size = 128


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Reply | Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(req)
                route = server.routes.get(parts.path) or server.routes.get(self.path) or server.routes.get("*")
                if route is None:
                    reply = Reply(404, b"not found", content_type="text/plain")
                else:
                    reply = route(req) if callable(route) else route
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                try:
                    if reply.hold is not None and not reply.hold.wait(HOLD_LIMIT):
                        raise AssertionError(f"a held reply to {self.path} was never released")
                    if reply.delay and not isinstance(reply.body, (bytes, str)):
                        pass
                    elif reply.delay:
                        time.sleep(reply.delay)
                    self.send_response(reply.status)
                    headers = dict(reply.headers)
                    if reply.content_type:
                        headers.setdefault("Content-Type", reply.content_type)
                    if isinstance(reply.body, (bytes, str)):
                        data = reply.body.encode() if isinstance(reply.body, str) else reply.body
                        headers.setdefault("Content-Length", str(len(data)))
                        for k, v in headers.items():
                            self.send_header(k, v)
                        self.end_headers()
                        if self.command != "HEAD":
                            self.wfile.write(data)
                    else:
                        headers.pop("Content-Length", None)
                        self.send_header("Transfer-Encoding", "chunked")
                        for k, v in headers.items():
                            self.send_header(k, v)
                        self.end_headers()
                        for chunk in reply.body:
                            if reply.delay:
                                time.sleep(reply.delay)
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        # Bursts of parallel fetches overflow the default listen backlog of 5.
        self.httpd = _QueuedServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        # A short poll interval makes shutdown (once per test) quick.
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, reply: Reply | Handler) -> str:
        self.routes[path] = reply
        return self.url(path)

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
