"""Serves the bundled sample feeds on 127.0.0.1 for `briefbot demo`.

Dates in the samples are written relative to now ({{ago:2h}}), so the demo always has fresh
items; the Chinese feed is served GBK-encoded like many Chinese publishers do.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

_AGO = re.compile(r"\{\{ago:(\d+)h\}\}")
_CONTENT_TYPES = {".xml": "application/rss+xml", ".atom": "application/atom+xml"}


def render_sample(name: str, now: datetime | None = None) -> tuple[bytes, str]:
    now = now or datetime.now(timezone.utc)
    text = resources.files("bot.samples").joinpath("feeds", name).read_text(encoding="utf-8")
    atom = name.endswith(".atom")

    def stamp(match: re.Match) -> str:
        when = (now - timedelta(hours=int(match.group(1)))).replace(microsecond=0)
        return when.isoformat().replace("+00:00", "Z") if atom else format_datetime(when)

    text = _AGO.sub(stamp, text)
    suffix = name[name.rfind("."):]
    encoding = "gbk" if 'encoding="gbk"' in text[:100] else "utf-8"
    return text.encode(encoding), f"{_CONTENT_TYPES.get(suffix, 'application/xml')}; charset={encoding}"


def sample_names() -> list[str]:
    return sorted(p.name for p in resources.files("bot.samples").joinpath("feeds").iterdir()
                  if p.name.endswith((".xml", ".atom")))


class SampleFeedServer:
    def __init__(self) -> None:
        names = set(sample_names())

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/").split("?")[0]
                if name not in names:
                    self.send_error(404)
                    return
                body, ctype = render_sample(name)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "SampleFeedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
