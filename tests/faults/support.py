"""Helpers shared by the fault suite: scenario builders, a connection-dropping proxy, small utilities."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sqlalchemy import update

from bot.models import utcnow
from bot.store import Store
from bot.store import schema as t
import feedgen
from feedgen import Entry, lines  # noqa: F401  (the fault tests read jsonl output through here)

# Secret-looking values the suite plants to prove they never leak.
OPENAI_KEY = "sk-faultsuite-0123456789abcdefSECRET"
FEED_TOKEN = "feedtoken-7f3a9c1e5b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url(path: str = "/feed.xml") -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}{path}"


def healthy_entry(tag: str, number: int = 41) -> Entry:
    """A relevant item with its own numbers, so it is always its own story."""
    return Entry(f"Antimony export licences granted to {number} smelters ({tag})",
                 f"The commerce ministry granted antimony export licences to {number} smelters this week; "
                 f"shipments of {number * 100} tonnes are expected to leave port by month end ({tag}).",
                 guid=f"healthy-{tag}", link=f"https://wire.example/{tag}")


async def poll_and_deliver(app, force: bool = True) -> dict:
    """One poll-and-deliver cycle; the reports by feed name."""
    return {r.feed: r for r in await feedgen.poll_and_deliver(app, force)}


def make_due(store: Store) -> None:
    """Pretend the backoff has elapsed: every pending outbox row is due now (time travel, not sleep)."""
    with store.engine.begin() as c:
        c.execute(update(t.outbox).where(t.outbox.c.status == "pending")
                  .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def log_text(caplog) -> str:
    return "\n".join(r.getMessage() + (("\n" + r.exc_text) if r.exc_text else "") for r in caplog.records)


def warnings_about(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and name in r.getMessage()]


@dataclass
class DropProxy:
    """An HTTP proxy in front of a fake API that can lose replies.

    `drop(method, path)` makes the next matching request reach the upstream (which processes it:
    the message lands) and then closes the client's connection without any reply: the client
    cannot know whether its request worked. `delay` slows matching replies (for shutdown tests).
    """

    upstream: str
    drops: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        proxy = self
        target = urlsplit(self.upstream)
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "keep-alive", "transfer-encoding")}
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    reply_headers = response.getheaders()
                    status, reason = response.status, response.reason
                finally:
                    conn.close()
                path = urlsplit(self.path).path
                if proxy._take_drop(self.command, path):
                    # The upstream did the work; the client never hears back.
                    self.close_connection = True
                    return
                delay = next((d for suffix, d in proxy.delays.items() if path.endswith(suffix)), 0.0)
                if delay:
                    time.sleep(delay)
                self.send_response(status, reason)
                for key, value in reply_headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def _take_drop(self, method: str, path: str) -> bool:
        with self._lock:
            for i, (m, suffix) in enumerate(self.drops):
                if m == method and path.endswith(suffix):
                    del self.drops[i]
                    self.dropped.append(path)
                    return True
        return False

    def drop(self, method: str, path_suffix: str, times: int = 1) -> None:
        with self._lock:
            self.drops.extend([(method, path_suffix)] * times)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "DropProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "DropProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
