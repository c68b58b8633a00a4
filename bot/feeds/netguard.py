"""SSRF guard: feed and article URLs come from config and from feeds themselves (links, redirects),
so a hostile feed could point the bot at 169.254.169.254 or an internal admin port.

The check runs when the TCP connection is made, on the very addresses we connect to: a hostname
is resolved once, every answer is checked, and the socket goes to a checked IP. Checking the URL
before the request would not be enough — DNS can answer differently a moment later (rebinding),
and redirects reach hosts the caller never saw.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpcore
import httpx
from httpcore._backends.auto import AutoBackend
from httpcore._backends.base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream

__all__ = ["BlockedAddress", "DNSResolutionError", "GuardedBackend", "is_public_ip", "make_transport",
           "redact_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges Python's `is_global` lets through (or that we want to name explicitly anyway).
_EXTRA_BLOCKED = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",          # "this network"
    "100.64.0.0/10",      # carrier-grade NAT (shared address space)
    "192.0.0.0/24",       # IETF protocol assignments
    "192.88.99.0/24",     # 6to4 relay anycast (deprecated)
    "198.18.0.0/15",      # benchmarking
    "224.0.0.0/4",        # multicast
    "240.0.0.0/4",        # reserved, incl. broadcast
    "fc00::/7",           # unique local
    "fe80::/10",          # link-local
    "fec0::/10",          # site-local (deprecated)
    "ff00::/8",           # multicast
    "100::/64",           # discard-only
    "2001:db8::/32",      # documentation
)]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(Exception):
    """A connection to a non-public address was refused (SSRF guard)."""

    def __init__(self, host: str, address: str | None = None, url: str | None = None):
        self.host, self.address, self.url = host, address, url
        target = redact_url(url) if url else host
        why = f"{host} resolves to non-public address {address}" if address and address != host \
            else f"{host} is a non-public address"
        super().__init__(f"refused to fetch {target}: {why} (set BRIEFBOT_ALLOW_PRIVATE_URLS=1 to allow)")

    def with_url(self, url: str) -> "BlockedAddress":
        return BlockedAddress(self.host, self.address, url)


class DNSResolutionError(httpcore.ConnectError):
    """The host name did not resolve; httpx turns it into ConnectError, kept as its __cause__."""


def redact_url(url: str) -> str:
    """URL without userinfo, query string and fragment: those may carry tokens."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


def is_public_ip(ip: str | IPAddress) -> bool:
    """True only for globally routable unicast addresses."""
    try:
        addr = ipaddress.ip_address(str(ip).split("%", 1)[0].strip("[]")) if not isinstance(
            ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else ip
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        # Addresses that embed an IPv4 address reach that address: judge the embedded one.
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr.teredo:
            embedded = addr.teredo[1]
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_ip(embedded)
    if (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_reserved
            or addr.is_unspecified or not addr.is_global):
        return False
    return not any(addr in net for net in _EXTRA_BLOCKED if net.version == addr.version)


class GuardedBackend(AsyncNetworkBackend):
    """httpcore network backend that resolves, vets and connects to the vetted IP itself."""

    def __init__(self, allow_private: bool = False, inner: AsyncNetworkBackend | None = None,
                 allowed_networks: typing.Iterable[str] = ()):
        self.allow_private = allow_private
        # Explicit exceptions (e.g. one internal feed server) without opening every private range.
        self.allowed_networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
        self._inner = inner or AutoBackend()

    def is_allowed(self, ip: str) -> bool:
        if self.allow_private or is_public_ip(ip):
            return True
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        return any(addr in net for net in self.allowed_networks if net.version == addr.version)

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.split("%", 1)[0].strip("[]")))]
        except ValueError:
            pass
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise DNSResolutionError(f"cannot resolve host {host!r}: {exc}") from exc
        addresses: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = str(sockaddr[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise DNSResolutionError(f"cannot resolve host {host!r}: no addresses")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out resolving {host!r}") from exc
        # Refuse if *any* answer is non-public: a name that mixes public and private answers
        # is exactly what a rebinding attacker would serve.
        for ip in addresses:
            if not self.is_allowed(ip):
                raise BlockedAddress(host, ip)
        last_error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(ip, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[SOCKET_OPTION] | None = None
                                  ) -> AsyncNetworkStream:
        raise BlockedAddress(f"unix:{path}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """AsyncHTTPTransport whose connections go through GuardedBackend; refusals name the URL."""

    def __init__(self, allow_private: bool = False, allowed_networks: typing.Iterable[str] = (),
                 **kwargs: typing.Any):
        if kwargs.get("proxy") is not None or kwargs.get("uds") is not None:
            raise ValueError("the SSRF guard cannot vet connections made through a proxy or unix socket")
        super().__init__(**kwargs)
        # httpx does not expose network_backend; the pool reads this attribute for every new connection.
        pool = self._pool
        if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
            raise RuntimeError("unsupported httpx/httpcore version: cannot install the SSRF guard")
        pool._network_backend = GuardedBackend(allow_private, allowed_networks=allowed_networks)
        self.allow_private = allow_private

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except BlockedAddress as exc:
            raise exc.with_url(str(request.url)) from None


def make_transport(allow_private: bool, allowed_networks: typing.Iterable[str] = (),
                   **pool_kwargs: typing.Any) -> httpx.AsyncHTTPTransport:
    """An httpx transport that refuses non-public addresses unless `allow_private`.

    `allowed_networks` (CIDRs) are reachable even when private ones are refused.
    `pool_kwargs` go to httpx.AsyncHTTPTransport (limits=, http2=, retries=, verify=, ...).
    """
    return GuardedTransport(allow_private=allow_private, allowed_networks=allowed_networks, **pool_kwargs)
