"""HTTP fetching of feeds and article pages: polite, bounded, and never raising for network trouble.

One shared aiohttp session (HTTP/1.1 keep-alive pool) behind a global and a per-host semaphore.
aiohttp rather than httpx because a warm re-poll is mostly tiny 304 exchanges, where the client's
own per-request overhead is the cost: aiohttp's is about a quarter of httpx + httpcore + anyio's.
Every fetch has an overall deadline on top of the connect timeout, so a server that drips one
byte a second cannot hold a slot. Redirects are followed by hand so each hop goes through the
SSRF guard (bot.ingest.netguard: every new connection is resolved and vetted) and loops are caught.
Bodies are decoded here (gzip/deflate) with a size cap and a compression-ratio guard, so a small
gzip bomb cannot inflate into gigabytes in memory.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import zlib
from dataclasses import dataclass
from datetime import timezone
from urllib.parse import SplitResult, urljoin, urlsplit

import aiohttp

from bot.config import FetchConfig
from bot.ingest.netguard import BlockedAddress, GuardedResolver, make_connector
from bot.ingest.urls import redact_url

log = logging.getLogger("briefbot.fetch")

__all__ = ["FetchResult", "Fetcher", "parse_retry_after", "FEED_ACCEPT", "PAGE_ACCEPT"]

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.8"
# Only encodings we decode ourselves under the size/ratio guard.
ACCEPT_ENCODING = "gzip, deflate"

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# Legitimate XML/HTML rarely compresses beyond ~20x; a bomb compresses ~1000x.
BOMB_RATIO = 100
# Below this decoded size the ratio is not judged (tiny, highly repetitive bodies are fine).
BOMB_MIN_DECODED = 1024 * 1024
_CONNECT_TIMEOUT_CAP = 10.0
# Idle keep-alive connections are closed after this long (publishers drop them around then anyway).
_KEEPALIVE_SECONDS = 30.0


@dataclass
class FetchResult:
    url: str
    status: str  # "ok" | "not-modified" | "error"
    http_status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None
    error_kind: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds
    gone: bool = False  # 410: the publisher says the feed is gone for good

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now_ts = time.time() if now is None else now
    return max(0.0, when.timestamp() - now_ts)


class _FetchError(Exception):
    """Internal: a classified failure that becomes an error FetchResult."""

    def __init__(self, kind: str, message: str, http_status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.message, self.http_status, self.retry_after = kind, message, http_status, retry_after


class _BoundedDecoder:
    """Streaming gzip/deflate decoder that never produces more than `limit` (+1) bytes in memory."""

    def __init__(self, content_encoding: str | None):
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        # Content-Encoding lists codings in the order applied; undo them in reverse.
        self._stages: list[zlib._Decompress | None] = []
        for coding in reversed(codings):
            if coding in ("gzip", "x-gzip"):
                self._stages.append(zlib.decompressobj(zlib.MAX_WBITS | 16))
            elif coding == "deflate":
                self._stages.append(None)  # zlib-wrapped or raw: decided on the first bytes
            else:
                raise _FetchError("server-error", f"unsupported Content-Encoding {coding!r}")
        self.compressed = bool(self._stages)

    def _stage_decompress(self, index: int, data: bytes, limit: int) -> bytes:
        stage = self._stages[index]
        if stage is None:
            # RFC says zlib-wrapped; many servers send raw deflate. Peek at the header.
            wbits = zlib.MAX_WBITS if (len(data) >= 2 and (data[0] * 256 + data[1]) % 31 == 0
                                       and data[0] & 0x0F == 8) else -zlib.MAX_WBITS
            stage = self._stages[index] = zlib.decompressobj(wbits)
        out = bytearray(stage.decompress(data, limit + 1))
        while stage.unconsumed_tail and len(out) <= limit:
            out += stage.decompress(stage.unconsumed_tail, limit + 1 - len(out))
        return bytes(out)

    def decode(self, data: bytes, limit: int) -> bytes:
        for index in range(len(self._stages)):
            data = self._stage_decompress(index, data, limit)
            if len(data) > limit:
                break
        return data

    def flush(self, limit: int) -> bytes:
        data = b""
        for index, stage in enumerate(self._stages):
            if stage is None:
                continue
            if data:
                data = self._stage_decompress(index, data, limit)
            data += stage.flush()
        return data


class Fetcher:
    """Shared HTTP client for feeds and article pages. Create once, `await aclose()` at shutdown."""

    def __init__(self, fetch_cfg: FetchConfig, allow_private: bool, *, allowed_networks: tuple[str, ...] = ()):
        self.cfg = fetch_cfg
        self.allow_private = allow_private
        self.allowed_networks = tuple(allowed_networks)
        self.deadline_seconds = fetch_cfg.timeout.total_seconds()
        # Checks IP-literal hosts up front, so every spelling of one (127.1, 0x7f000001, ...) is named
        # as refused; the connector's own guard still vets every address it connects to.
        self._literal_guard = GuardedResolver(allow_private, self.allowed_networks)
        self._headers = {"User-Agent": fetch_cfg.user_agent, "Accept-Encoding": ACCEPT_ENCODING}
        # Created on first use: an aiohttp session belongs to the running event loop, and the app may
        # be built before the loop runs.
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._global = asyncio.Semaphore(fetch_cfg.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is not None and self._session_loop is asyncio.get_running_loop():
            return session
        if self._closed:
            raise RuntimeError("Fetcher is closed: cannot fetch after aclose()")
        if session is not None:
            # Used from a new event loop (e.g. a second asyncio.run): the old session's connections
            # belong to the old loop and cannot be closed from this one; let them go.
            log.debug("fetcher: new event loop, starting a new HTTP session")
            session.detach()
        self._session_loop = asyncio.get_running_loop()
        connector = make_connector(
            self.allow_private, self.allowed_networks,
            limit=self.cfg.concurrency, limit_per_host=self.cfg.per_host, keepalive_timeout=_KEEPALIVE_SECONDS,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=min(_CONNECT_TIMEOUT_CAP, self.deadline_seconds),
                                          sock_connect=min(_CONNECT_TIMEOUT_CAP, self.deadline_seconds)),
            headers=self._headers,
            # Proxy settings from the environment would route around the SSRF guard's address check.
            trust_env=False,
            # Bodies are decoded by _BoundedDecoder, under the size cap and the ratio guard.
            auto_decompress=False,
            # Feeds have no business setting state in the bot; a cookie could also leak across hosts.
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
        )
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is None:
            return
        if self._session_loop is asyncio.get_running_loop():
            await session.close()
        else:
            session.detach()  # its loop is gone: nothing left to close it with

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ public

    async def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET a feed, conditionally when validators are given. Never raises for network/HTTP trouble."""
        headers = {"Accept": FEED_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._fetch(url, headers)

    async def fetch_page(self, url: str) -> FetchResult:
        """GET an article page (HTML), with the same guards as feeds."""
        return await self._fetch(url, {"Accept": PAGE_ACCEPT})

    # ------------------------------------------------------------------ internals

    def _host_semaphore(self, parts: SplitResult) -> asyncio.Semaphore:
        key = f"{(parts.hostname or '').lower()}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        sem = self._per_host.get(key)
        if sem is None:
            sem = self._per_host[key] = asyncio.Semaphore(self.cfg.per_host)
        return sem

    async def _fetch(self, url: str, headers: dict[str, str]) -> FetchResult:
        current = url
        try:
            parts = _check_url(url)
            async with self._global:
                deadline: float | None = None
                seen = {_normalise_for_loop(parts)}
                hops = 0
                while True:
                    self._literal_guard.check_literal(parts.hostname or "")
                    async with self._host_semaphore(parts):
                        # The deadline starts once we hold a slot: queueing is not the server's fault.
                        if deadline is None:
                            deadline = asyncio.get_running_loop().time() + self.deadline_seconds
                        try:
                            async with asyncio.timeout_at(deadline):
                                result, location = await self._one_hop(url, current, headers)
                        except TimeoutError as exc:
                            if isinstance(exc, aiohttp.ServerTimeoutError):
                                raise  # aiohttp's own connect timeout: reported below, by phase
                            raise _FetchError("timeout", f"fetching {redact_url(url)} took longer than "
                                              f"{self.deadline_seconds:g}s") from None
                    if location is None:
                        return result
                    hops += 1
                    parts = self._redirect_target(url, location, hops, seen)
                    current = location
        except _FetchError as exc:
            return self._error(url, current, exc.kind, exc.message, exc.http_status, exc.retry_after)
        except BlockedAddress as exc:
            return self._error(url, current, "blocked-private", _blocked_message(url, current, exc))
        except aiohttp.ServerTimeoutError as exc:
            return self._error(url, current, "timeout", f"{redact_url(url)}: {_timeout_phase(exc)} timed out")
        except aiohttp.ClientConnectorDNSError:
            return self._error(url, current, "dns", f"{redact_url(url)}: cannot resolve host "
                               f"{urlsplit(current).hostname!r}")
        except aiohttp.ClientConnectorError as exc:
            return self._error(url, current, "connect", f"{redact_url(url)}: cannot connect ({_brief(exc)})")
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, UnicodeError) as exc:
            # UnicodeError: a host name that cannot be IDNA-encoded.
            return self._error(url, current, "bad-url", f"{redact_url(url)}: invalid URL ({_brief(exc)})")
        except (aiohttp.ClientError, OSError) as exc:
            # Connection dropped mid-response, protocol violations, ...
            return self._error(url, current, "connect",
                               f"{redact_url(url)}: connection failed ({_brief(exc)})")
        except zlib.error as exc:
            return self._error(url, current, "server-error",
                               f"{redact_url(url)}: corrupt compressed body ({exc})")

    def _redirect_target(self, url: str, location: str, hops: int, seen: set[str]) -> SplitResult:
        """The parts of the URL a redirect leads to; _FetchError for one hop too many, an unusable
        URL or a loop."""
        if hops > self.cfg.max_redirects:
            raise _FetchError("too-many-redirects", f"{redact_url(url)}: more than {self.cfg.max_redirects} redirects")
        try:
            parts = _check_url(location)
        except _FetchError as exc:
            raise _FetchError("bad-url", f"{redact_url(url)}: redirect to unusable URL ({exc.message})") from None
        key = _normalise_for_loop(parts)
        if key in seen:
            raise _FetchError("redirect-loop", f"{redact_url(url)}: redirect loop at {redact_url(location)}")
        seen.add(key)
        return parts

    async def _one_hop(self, original: str, url: str, headers: dict[str, str]
                       ) -> tuple[FetchResult | None, str | None]:
        """One request. Returns (result, None) when done, or (None, next_url) for a redirect."""
        response = await self._client().request("GET", url, headers=headers, allow_redirects=False)
        try:
            status = response.status
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise _FetchError("server-error",
                                      f"{redact_url(original)}: HTTP {status} redirect without Location", status)
                result: tuple[FetchResult | None, str | None] = (None, urljoin(url, location.strip()))
            elif status == 304:
                result = FetchResult(url=original, status="not-modified", http_status=304,
                                     etag=response.headers.get("ETag"),
                                     last_modified=response.headers.get("Last-Modified"),
                                     final_url=url), None
            else:
                result = await self._final_response(response, original, url)
        except BaseException:
            # Unread or half-read body: the connection cannot be reused.
            response.close()
            raise
        # Fully read (or bodiless): the connection goes back to the pool for the next poll.
        response.release()
        return result

    async def _final_response(self, response: aiohttp.ClientResponse, original: str, url: str
                              ) -> tuple[FetchResult, None]:
        status = response.status
        shown = redact_url(original)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 404:
            raise _FetchError("not-found", f"{shown}: HTTP 404 not found", status)
        if status == 410:
            raise _FetchError("gone", f"{shown}: HTTP 410 gone (the publisher removed it)", status)
        if status == 429:
            wait = f", retry after {retry_after:g}s" if retry_after is not None else ""
            raise _FetchError("rate-limited", f"{shown}: HTTP 429 too many requests{wait}", status,
                              retry_after)
        if status >= 500:
            raise _FetchError("server-error", f"{shown}: HTTP {status} server error", status, retry_after)
        if status >= 400:
            raise _FetchError("http-4xx", f"{shown}: HTTP {status}", status, retry_after)
        if status >= 300 or status < 200:
            raise _FetchError("server-error", f"{shown}: unexpected HTTP {status}", status)
        body = await self._read_body(response, shown)
        return FetchResult(
            url=original, status="ok", http_status=status, body=body,
            content_type=response.headers.get("Content-Type"),
            etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified"),
            final_url=url,
        ), None

    async def _read_body(self, response: aiohttp.ClientResponse, shown: str) -> bytes:
        limit = self.cfg.max_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _FetchError("too-large", f"{shown}: body of {int(declared)} bytes exceeds the "
                              f"{limit}-byte limit", response.status)
        decoder = _BoundedDecoder(response.headers.get("Content-Encoding"))
        body = bytearray()
        raw_total = 0
        # The session does not decompress (auto_decompress=False): these are the bytes on the wire.
        async for chunk in response.content.iter_any():
            raw_total += len(chunk)
            body += decoder.decode(chunk, limit - len(body)) if decoder.compressed else chunk
            self._check_size(body, raw_total, limit, decoder.compressed, shown, response.status)
        if decoder.compressed:
            body += decoder.flush(limit - len(body))
            self._check_size(body, raw_total, limit, True, shown, response.status)
        return bytes(body)

    @staticmethod
    def _check_size(body: bytearray, raw_total: int, limit: int, compressed: bool, shown: str,
                    status: int) -> None:
        if compressed and len(body) >= BOMB_MIN_DECODED and len(body) > BOMB_RATIO * max(raw_total, 1):
            raise _FetchError("decompression-bomb", f"{shown}: compressed body inflates more than "
                              f"{BOMB_RATIO}x ({raw_total} bytes -> over {len(body)}); refused", status)
        if len(body) > limit:
            raise _FetchError("too-large", f"{shown}: body exceeds the {limit}-byte limit", status)

    def _error(self, url: str, current: str, kind: str, message: str, http_status: int | None = None,
               retry_after: float | None = None) -> FetchResult:
        # Not counted in metrics.FETCH_ERRORS here: the poller counts feed failures (incl. parse errors).
        log.info("fetch error (%s): %s", kind, message)
        return FetchResult(url=url, status="error", http_status=http_status, final_url=current,
                           error_kind=kind, error=message, retry_after=retry_after, gone=kind == "gone")


def _check_url(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a non-numeric port
    except ValueError as exc:
        raise _FetchError("bad-url", f"{redact_url(url)}: invalid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise _FetchError("bad-url", f"{redact_url(url)}: only http(s) URLs can be fetched")
    if not parts.hostname:
        raise _FetchError("bad-url", f"{redact_url(url)}: URL has no host")
    return parts


def _normalise_for_loop(parts: SplitResult) -> str:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}{parts.path or '/'}?{parts.query}"


def _blocked_message(url: str, current: str, exc: BlockedAddress) -> str:
    # Name the original URL as configured and, if different, the hop that was refused.
    where = redact_url(url) if current == url else f"{redact_url(url)} (redirected to {redact_url(current)})"
    what = f"{exc.host} resolves to non-public address {exc.address}" \
        if exc.address and exc.address != exc.host else f"{exc.host} is a non-public address"
    return f"refused to fetch {where}: {what} (set BRIEFBOT_ALLOW_PRIVATE_URLS=1 to allow)"


def _timeout_phase(exc: aiohttp.ServerTimeoutError) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "read"
    return "request"


def _brief(exc: Exception) -> str:
    # Some aiohttp errors put the full request URL in str(exc); its query string may hold a token.
    if isinstance(exc, aiohttp.ClientResponseError):
        text = "invalid HTTP response: " + " ".join(str(exc.message).split())
    elif isinstance(exc, aiohttp.InvalidURL):
        text = str(exc.description or "not a usable URL")
    else:
        text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
