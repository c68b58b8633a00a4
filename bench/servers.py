"""Loopback feed server for the benchmarks, run in its own process so it never shares a CPU
(or a GIL) with the code being measured.

It serves pre-rendered feed bodies from memory with ETag / Last-Modified and answers 304 to
a matching conditional GET. A feed may have several timed versions (P4: items appear at given
wall-clock times): the newest version whose time has come is served. It listens on the same
port on 127.0.0.1 … 127.0.0.H, so feeds live on H distinct loopback "hosts" as real feeds live
on many publishers (briefbot limits connections per host).

    python -m bench.servers DIR --hosts 50      # prints "READY <port>" when listening

Control: GET /__stats (request counters), POST /__control {"latency_ms": 100, "reset": true}.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from email.utils import formatdate
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- manifest (parent side)

def write_manifest(root: Path, feeds: dict[str, tuple[str, list[tuple[float, bytes]]]]) -> Path:
    """feeds: path -> (content_type, [(appear_at_epoch, body), ...]). Bodies go to files under root."""
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}
    for n, (path, (content_type, versions)) in enumerate(feeds.items()):
        entries = []
        for v, (at, body) in enumerate(sorted(versions, key=lambda x: x[0])):
            name = f"b{n:05d}.{v}.xml"
            (root / name).write_bytes(body)
            entries.append([at, name])
        manifest[path] = {"content_type": content_type, "versions": entries}
    target = root / "manifest.json"
    target.write_text(json.dumps(manifest))
    return target


class FeedServer:
    """Parent-side handle of the server subprocess."""

    def __init__(self, root: Path, hosts: int = 50, latency_ms: float = 0.0):
        self.root, self.hosts, self.latency_ms = root, max(1, min(hosts, 250)), latency_ms
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "FeedServer":
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", str(self.root), "--hosts", str(self.hosts),
             "--latency-ms", str(self.latency_ms)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO), env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise RuntimeError(f"bench feed server did not start: {line!r} {err[-2000:]}")
        self.port = int(line.split()[1])
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, path: str, index: int = 0) -> str:
        return f"http://127.0.0.{1 + index % self.hosts}:{self.port}{path}"

    def _call(self, path: str, data: dict | None = None) -> dict:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     method="POST" if body else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stats(self) -> dict:
        return self._call("/__stats")

    def control(self, **values) -> dict:
        return self._call("/__control", values)

    def cpu_seconds(self) -> float:
        """User+system CPU the server process used so far (to show it was not the bottleneck)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "FeedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- server (child side)

class _Version:
    __slots__ = ("at", "body", "etag", "last_modified")

    def __init__(self, at: float, body: bytes):
        self.at, self.body = at, body
        self.etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        self.last_modified = formatdate(at if at > 0 else 1767225600, usegmt=True)


async def _listen(runner, hosts: int) -> int:
    """Listen on one free port on 127.0.0.1 … 127.0.0.<hosts>; returns the port."""
    from aiohttp import web

    first = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await first.start()
    port = first._server.sockets[0].getsockname()[1]
    for h in range(2, hosts + 1):
        await web.TCPSite(runner, f"127.0.0.{h}", port, backlog=4096).start()
    return port


async def _serve(root: Path, hosts: int, latency_ms: float) -> None:
    from aiohttp import web

    manifest = json.loads((root / "manifest.json").read_text())
    feeds: dict[str, tuple[str, list[float], list[_Version]]] = {}
    for path, entry in manifest.items():
        versions = [_Version(at, (root / name).read_bytes()) for at, name in entry["versions"]]
        feeds[path] = (entry["content_type"], [v.at for v in versions], versions)
    state = {"latency": latency_ms / 1000.0, "requests": 0, "ok": 0, "not_modified": 0, "not_found": 0}

    async def feed(request: web.Request) -> web.StreamResponse:
        state["requests"] += 1
        found = feeds.get(request.path)
        if found is None:
            state["not_found"] += 1
            return web.Response(status=404, text="no such feed")
        content_type, times, versions = found
        i = bisect.bisect_right(times, time.time()) - 1
        if i < 0:
            state["not_found"] += 1
            return web.Response(status=404, text="feed not published yet")
        v = versions[i]
        if state["latency"]:
            await asyncio.sleep(state["latency"])  # publisher think time; costs this server no CPU
        headers = {"ETag": v.etag, "Last-Modified": v.last_modified, "Cache-Control": "max-age=0"}
        if request.headers.get("If-None-Match") == v.etag:
            state["not_modified"] += 1
            return web.Response(status=304, headers=headers)
        state["ok"] += 1
        return web.Response(body=v.body, headers={**headers, "Content-Type": content_type})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({**state, "latency_ms": state["latency"] * 1000.0})

    async def control(request: web.Request) -> web.Response:
        data = await request.json()
        if "latency_ms" in data:
            state["latency"] = float(data["latency_ms"]) / 1000.0
        if data.get("reset"):
            for key in ("requests", "ok", "not_modified", "not_found"):
                state[key] = 0
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/__stats", stats)
    app.router.add_post("/__control", control)
    app.router.add_get("/{tail:.*}", feed)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    print(f"READY {await _listen(runner, hosts)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description="bench feed server")
    p.add_argument("root", type=Path)
    p.add_argument("--hosts", type=int, default=50)
    p.add_argument("--latency-ms", type=float, default=0.0)
    args = p.parse_args()
    try:
        import uvloop  # noqa: F401  (only if present; the stock loop is fast enough too)

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(args.root, args.hosts, args.latency_ms))


if __name__ == "__main__":
    main()
