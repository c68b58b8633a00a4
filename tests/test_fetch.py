"""Fetcher and SSRF guard against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import aiohttp
import pytest

from bot.config import FetchConfig
from bot.ingest.fetch import FEED_ACCEPT, PAGE_ACCEPT, Fetcher, parse_retry_after
from bot.ingest.netguard import BlockedAddress, is_public_ip, make_connector
from bot.ingest.urls import redact_url
from loopback import Reply

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Loopback feed</title>
<item><title>Rare earth export curbs tighten</title><link>https://example.com/a</link>
<description>Exports fell 8.6% in March.</description></item></channel></rss>"""


def cfg(**overrides) -> FetchConfig:
    values = dict(timeout=timedelta(seconds=5), max_redirects=3)
    values.update(overrides)
    return FetchConfig(**values)


@pytest.fixture
async def fetcher():
    f = Fetcher(cfg(), allow_private=True)
    yield f
    await f.aclose()


# --------------------------------------------------------------------------- success + conditional GET


async def test_ok_sends_user_agent_and_accept(http_server, fetcher):
    url = http_server.route("/feed.xml", Reply(200, FEED, content_type="application/rss+xml; charset=utf-8"))
    result = await fetcher.fetch(url)
    assert result.status == "ok" and result.ok
    assert result.http_status == 200
    assert result.body == FEED
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.final_url == url
    assert result.error_kind is None and result.error is None
    request = http_server.requests_to("/feed.xml")[0]
    assert request.header("user-agent") == FetchConfig().user_agent
    assert request.header("accept") == FEED_ACCEPT
    assert "if-none-match" not in request.headers


async def test_conditional_get_returns_not_modified(http_server, fetcher):
    modified = "Fri, 04 Apr 2025 08:00:00 GMT"

    def handler(req):
        if req.header("if-none-match") == '"v1"' or req.header("if-modified-since") == modified:
            return Reply(304, b"", headers={"ETag": '"v1"'})
        return Reply(200, FEED, headers={"ETag": '"v1"', "Last-Modified": modified},
                     content_type="application/rss+xml")

    url = http_server.route("/cond.xml", handler)
    first = await fetcher.fetch(url)
    assert first.status == "ok" and first.etag == '"v1"' and first.last_modified == modified

    second = await fetcher.fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert second.status == "not-modified"
    assert second.http_status == 304
    assert second.body is None
    assert second.error_kind is None
    sent = http_server.requests_to("/cond.xml")[1]
    assert sent.header("if-none-match") == '"v1"'
    assert sent.header("if-modified-since") == modified


async def test_gzip_body_is_decoded(http_server, fetcher):
    url = http_server.route("/gz.xml", Reply(200, gzip.compress(FEED), headers={"Content-Encoding": "gzip"},
                                             content_type="application/rss+xml"))
    result = await fetcher.fetch(url)
    assert result.status == "ok"
    assert result.body == FEED
    assert "gzip" in http_server.requests_to("/gz.xml")[0].header("accept-encoding")


async def test_fetch_page_asks_for_html(http_server, fetcher):
    url = http_server.route("/article.html", Reply(200, "<html><body><p>Body</p></body></html>",
                                                   content_type="text/html"))
    result = await fetcher.fetch_page(url)
    assert result.status == "ok" and b"<p>Body</p>" in result.body
    assert http_server.requests_to("/article.html")[0].header("accept") == PAGE_ACCEPT


# --------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize("status, kind, gone", [
    (404, "not-found", False),
    (410, "gone", True),
    (403, "http-4xx", False),
    (500, "server-error", False),
])
async def test_http_error_statuses(http_server, fetcher, status, kind, gone):
    url = http_server.route("/status", Reply(status, b"nope", content_type="text/plain"))
    result = await fetcher.fetch(url)
    assert result.status == "error"
    assert result.http_status == status
    assert result.error_kind == kind
    assert result.gone is gone
    assert result.body is None
    assert "/status" in result.error and str(status) in result.error


async def test_rate_limited_with_retry_after_seconds(http_server, fetcher):
    url = http_server.route("/busy", Reply(429, b"slow down", headers={"Retry-After": "120"}))
    result = await fetcher.fetch(url)
    assert result.error_kind == "rate-limited"
    assert result.http_status == 429
    assert result.retry_after == 120.0
    assert "429" in result.error


async def test_service_unavailable_keeps_retry_after_date(http_server, fetcher):
    when = datetime.now(timezone.utc) + timedelta(hours=1)
    url = http_server.route("/maint", Reply(503, b"", headers={"Retry-After": format_datetime(when, usegmt=True)}))
    result = await fetcher.fetch(url)
    assert result.error_kind == "server-error"
    assert 3500 <= result.retry_after <= 3600


def test_parse_retry_after_forms():
    now = datetime(2025, 4, 4, 12, 0, tzinfo=timezone.utc).timestamp()
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("Fri, 04 Apr 2025 12:05:00 GMT", now) == 300.0
    assert parse_retry_after("Fri, 04 Apr 2025 11:00:00 GMT", now) == 0.0  # in the past: retry now
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_error_messages_hide_query_and_userinfo(http_server, fetcher):
    http_server.route("/private-feed", Reply(404, b""))
    url = f"http://reader:hunter2@127.0.0.1:{http_server.port}/private-feed?token=SECRET123"
    result = await fetcher.fetch(url)
    assert result.error_kind == "not-found"
    assert "/private-feed" in result.error
    assert "SECRET123" not in result.error and "hunter2" not in result.error and "reader" not in result.error
    assert redact_url(url) == f"http://127.0.0.1:{http_server.port}/private-feed"


async def test_bad_url_and_connection_refused(fetcher):
    bad = await fetcher.fetch("ftp://example.com/feed.xml")
    assert bad.error_kind == "bad-url" and "ftp://example.com/feed.xml" in bad.error

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = await fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml")
    assert refused.status == "error"
    assert refused.error_kind == "connect"
    assert f"127.0.0.1:{port}/feed.xml" in refused.error


async def test_unresolvable_host_is_dns_error(fetcher):
    result = await fetcher.fetch("http://no-such-host.invalid/feed.xml")
    assert result.error_kind == "dns"
    assert "no-such-host.invalid" in result.error


# --------------------------------------------------------------------------- redirects


async def test_redirect_chain_is_followed(http_server, fetcher):
    http_server.route("/old", Reply(301, b"", headers={"Location": "/middle"}))
    http_server.route("/middle", Reply(302, b"", headers={"Location": http_server.url("/new.xml")}))
    final = http_server.route("/new.xml", Reply(200, FEED, content_type="application/rss+xml"))
    result = await fetcher.fetch(http_server.url("/old"), etag='"e1"')
    assert result.status == "ok" and result.body == FEED
    assert result.url == http_server.url("/old")
    assert result.final_url == final
    # Validators travel with every hop: the stored ETag belongs to the final location.
    assert http_server.requests_to("/new.xml")[0].header("if-none-match") == '"e1"'


async def test_redirect_loop_is_detected(http_server, fetcher):
    http_server.route("/a", Reply(302, b"", headers={"Location": "/b"}))
    http_server.route("/b", Reply(302, b"", headers={"Location": "/a"}))
    result = await fetcher.fetch(http_server.url("/a"))
    assert result.error_kind == "redirect-loop"
    assert "/a" in result.error
    assert len(http_server.requests_to("/a")) == 1 and len(http_server.requests_to("/b")) == 1


async def test_too_many_redirects(http_server, fetcher):
    for i in range(5):
        http_server.route(f"/hop{i}", Reply(307, b"", headers={"Location": f"/hop{i + 1}"}))
    result = await fetcher.fetch(http_server.url("/hop0"))
    assert result.error_kind == "too-many-redirects"
    assert len(http_server.requests_to("/hop4")) == 0  # max_redirects=3: hop0 + 3 redirects, then stop


async def test_redirect_to_private_address_is_refused(http_server):
    # Only the loopback server itself is allowed; the redirect aims at the cloud metadata service.
    guarded = Fetcher(cfg(), allow_private=False, allowed_networks=("127.0.0.1/32",))
    try:
        http_server.route("/feed", Reply(302, b"", headers={
            "Location": "http://169.254.169.254/latest/meta-data/iam?x=1"}))
        result = await guarded.fetch(http_server.url("/feed"))
    finally:
        await guarded.aclose()
    assert result.error_kind == "blocked-private"
    assert result.status == "error"
    assert "169.254.169.254" in result.error and "/feed" in result.error
    assert "x=1" not in result.error


# --------------------------------------------------------------------------- size and decompression guards


async def test_size_cap_with_content_length(http_server):
    f = Fetcher(cfg(max_bytes=2048), allow_private=True)
    try:
        url = http_server.route("/big", Reply(200, b"x" * 10_000, content_type="application/xml"))
        result = await f.fetch(url)
    finally:
        await f.aclose()
    assert result.error_kind == "too-large"
    assert "2048" in result.error


async def test_size_cap_when_streamed_without_length(http_server):
    f = Fetcher(cfg(max_bytes=2048), allow_private=True)
    try:
        url = http_server.route("/stream", Reply(200, [b"y" * 1000] * 10, content_type="application/xml"))
        result = await f.fetch(url)
    finally:
        await f.aclose()
    assert result.error_kind == "too-large"
    assert result.body is None


async def test_gzip_bomb_is_refused(http_server, fetcher):
    bomb = gzip.compress(b"\0" * (40 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    url = http_server.route("/bomb.xml", Reply(200, bomb, headers={"Content-Encoding": "gzip"},
                                               content_type="application/rss+xml"))
    result = await fetcher.fetch(url)
    assert result.error_kind == "decompression-bomb"
    assert "/bomb.xml" in result.error


async def test_corrupt_gzip_body_is_a_server_error(http_server, fetcher):
    url = http_server.route("/broken.xml", Reply(200, b"\x1f\x8b\x08\x00not really gzip at all",
                                                 headers={"Content-Encoding": "gzip"},
                                                 content_type="application/rss+xml"))
    result = await fetcher.fetch(url)
    assert result.error_kind == "server-error"
    assert "corrupt compressed body" in result.error and "/broken.xml" in result.error


async def test_raw_deflate_body_is_decoded(http_server, fetcher):
    # RFC says zlib-wrapped deflate; many servers send raw deflate. Both are read.
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    url = http_server.route("/raw.xml", Reply(200, raw.compress(FEED) + raw.flush(),
                                              headers={"Content-Encoding": "deflate"},
                                              content_type="application/rss+xml"))
    result = await fetcher.fetch(url)
    assert result.status == "ok" and result.body == FEED


# --------------------------------------------------------------------------- connection handling


async def test_cookies_set_by_a_feed_are_not_sent_back(http_server, fetcher):
    http_server.route("/cookie.xml", Reply(200, FEED, headers={"Set-Cookie": "session=abc123; Path=/"},
                                           content_type="application/rss+xml"))
    # A host name, not an IP literal: an ordinary cookie jar keeps cookies only for names.
    url = f"http://localhost:{http_server.port}/cookie.xml"
    await fetcher.fetch(url)
    await fetcher.fetch(url)
    assert [r.header("cookie") for r in http_server.requests_to("/cookie.xml")] == [None, None]


async def test_proxy_from_the_environment_is_ignored(http_server, monkeypatch):
    # A proxy would make the connection for us, out of the SSRF guard's sight.
    from loopback import LoopbackServer

    with LoopbackServer() as proxy:
        proxy.route("*", Reply(502, b"proxied", content_type="text/plain"))
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.base_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        url = http_server.route("/direct.xml", Reply(200, FEED, content_type="application/rss+xml"))
        async with Fetcher(cfg(), allow_private=True) as f:
            result = await f.fetch(url)
        assert result.status == "ok" and result.body == FEED
        assert proxy.requests == []


class RawServer:
    """A bare TCP server for what the HTTP server cannot do: count connections, cut a body short."""

    def __init__(self, respond):
        self.respond = respond  # (connection socket) -> None; runs once per accepted connection
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            try:
                self.respond(conn)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def _read_request(conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        data += chunk
    return data


async def test_repolls_answered_304_reuse_one_keep_alive_connection(fetcher):
    def answer_304_forever(conn):
        while _read_request(conn):
            conn.sendall(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 0\r\n\r\n')

    server = RawServer(answer_304_forever)
    try:
        results = [await fetcher.fetch(f"http://127.0.0.1:{server.port}/feed.xml", etag='"v1"') for _ in range(5)]
    finally:
        server.close()
    assert [r.status for r in results] == ["not-modified"] * 5
    assert results[-1].etag == '"v1"'
    assert server.connections == 1


async def test_connection_dropped_mid_body_is_a_connect_error(fetcher):
    def cut_short(conn):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 5000\r\n\r\n"
                     + FEED[:100])

    server = RawServer(cut_short)
    try:
        result = await fetcher.fetch(f"http://127.0.0.1:{server.port}/feed.xml?token=T0KEN")
    finally:
        server.close()
    assert result.status == "error" and result.error_kind == "connect"
    assert "connection failed" in result.error and "/feed.xml" in result.error
    assert "T0KEN" not in result.error


async def test_malformed_response_is_a_connect_error_without_the_url_query(fetcher):
    def bad_header(conn):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nNot A Header Line\r\nContent-Length: 3\r\n\r\nabc")

    server = RawServer(bad_header)
    try:
        result = await fetcher.fetch(f"http://127.0.0.1:{server.port}/feed.xml?token=T0KEN")
    finally:
        server.close()
    assert result.error_kind == "connect" and "invalid HTTP response" in result.error
    assert "/feed.xml" in result.error and "T0KEN" not in result.error


def test_fetcher_built_outside_an_event_loop_works_in_each_loop_it_is_used_from(http_server):
    # The app is built before the loop runs; CLI commands may run the loop more than once.
    url = http_server.route("/feed.xml", Reply(200, FEED, content_type="application/rss+xml"))
    f = Fetcher(cfg(), allow_private=True)
    first = asyncio.run(f.fetch(url))

    async def fetch_then_close():
        try:
            return await f.fetch(url)
        finally:
            await f.aclose()

    second = asyncio.run(fetch_then_close())
    assert first.status == second.status == "ok"
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(f.fetch(url))


# --------------------------------------------------------------------------- deadlines and concurrency


async def test_slow_drip_hits_overall_deadline_and_frees_the_slot(http_server):
    # Each chunk arrives well within the read timeout, but the whole body never completes in time.
    f = Fetcher(cfg(timeout=timedelta(seconds=1), concurrency=1), allow_private=True)
    try:
        drip = http_server.route("/drip", Reply(200, [b"<"] * 40, content_type="application/xml", delay=0.2))
        quick = http_server.route("/quick", Reply(200, FEED, content_type="application/xml"))
        slow = await f.fetch(drip)
        after = await f.fetch(quick)  # the single slot was released
    finally:
        await f.aclose()
    assert slow.error_kind == "timeout"
    assert "/drip" in slow.error and "1s" in slow.error
    assert after.status == "ok"


async def test_per_host_limit_bounds_parallel_requests(http_server):
    import asyncio

    in_flight = 0
    peak = 0
    lock = threading.Lock()
    two_at_once = threading.Event()

    def handler(req):
        # The first request is held until a second is in flight too: the limit's two run in
        # parallel, and (were it not enforced) the other four would pile up behind them.
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight >= 2:
                two_at_once.set()
        two_at_once.wait(30)
        with lock:
            in_flight -= 1
        return Reply(200, FEED, content_type="application/xml")

    http_server.route("*", handler)
    f = Fetcher(cfg(per_host=2, concurrency=8), allow_private=True)
    try:
        results = await asyncio.gather(*(f.fetch(http_server.url(f"/p{i}")) for i in range(6)))
    finally:
        await f.aclose()
    assert all(r.status == "ok" for r in results)
    assert two_at_once.is_set() and peak == 2


# --------------------------------------------------------------------------- SSRF guard


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("10.0.0.5", False), ("172.16.3.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("224.0.0.251", False), ("0.0.0.0", False),
    ("240.0.0.1", False), ("255.255.255.255", False), ("::1", False), ("::", False), ("fd12::1", False),
    ("fe80::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("ff02::1", False),
    ("not-an-ip", False),
])
def test_is_public_ip(address, public):
    assert is_public_ip(address) is public


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_fetcher_refuses_loopback_when_private_not_allowed(http_server, host):
    http_server.route("/feed.xml", Reply(200, FEED))
    url = f"http://{host}:{http_server.port}/feed.xml?key=abc"
    f = Fetcher(cfg(), allow_private=False)
    try:
        result = await f.fetch(url)
    finally:
        await f.aclose()
    assert result.status == "error"
    assert result.error_kind == "blocked-private"
    assert f"http://{host}:{http_server.port}/feed.xml" in result.error
    assert "key=abc" not in result.error
    assert http_server.requests_to("/feed.xml") == []  # never connected


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_guarded_connector_refuses_then_allows(http_server, host):
    # The connector alone, without the Fetcher's URL checks: the refusal happens at connect time,
    # for a name (via the resolver) and for an IP literal (via the socket factory) alike.
    http_server.route("/feed.xml", Reply(200, FEED))
    url = f"http://{host}:{http_server.port}/feed.xml"
    async with aiohttp.ClientSession(connector=make_connector(allow_private=False)) as session:
        with pytest.raises(BlockedAddress) as refused:
            await session.get(url)
    assert "127.0.0.1" in str(refused.value) and host in str(refused.value)
    assert "non-public" in str(refused.value)
    assert http_server.requests_to("/feed.xml") == []

    async with aiohttp.ClientSession(connector=make_connector(allow_private=True)) as session:
        async with session.get(url) as response:
            assert response.status == 200 and await response.read() == FEED


async def test_guarded_connector_honours_allowed_networks(http_server):
    http_server.route("/feed.xml", Reply(200, FEED))
    url = f"http://localhost:{http_server.port}/feed.xml"
    # localhost may also answer ::1, which 127.0.0.1/32 does not cover: allow both loopbacks.
    connector = make_connector(allow_private=False, allowed_networks=("127.0.0.1/32", "::1/128"))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url) as response:
            assert response.status == 200 and await response.read() == FEED
        with pytest.raises(BlockedAddress) as refused:
            await session.get("http://10.0.0.7/admin")
    assert refused.value.address in (None, "10.0.0.7") and "10.0.0.7" in str(refused.value)


def test_guarded_connector_owns_its_resolver():
    with pytest.raises(ValueError, match="use_dns_cache"):
        make_connector(allow_private=False, use_dns_cache=True)


async def test_fetcher_with_private_allowed_reaches_localhost(http_server):
    url = http_server.route("/feed.xml", Reply(200, FEED))
    f = Fetcher(cfg(), allow_private=True)
    try:
        result = await f.fetch(url.replace("127.0.0.1", "localhost"))
    finally:
        await f.aclose()
    assert result.status == "ok" and result.body == FEED
