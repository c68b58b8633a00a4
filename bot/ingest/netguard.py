"""SSRF guard: feed and article URLs come from config and from feeds themselves (links, redirects),
so a hostile feed could point the bot at 169.254.169.254 or an internal admin port.

The check runs when the TCP connection is made, on the very addresses we connect to: a hostname
is resolved once (by `GuardedResolver`, which aiohttp's connector asks for every new connection),
every answer is checked, and the socket goes only to the checked IPs. Checking the URL before the
request would not be enough — DNS can answer differently a moment later (rebinding), and redirects
reach hosts the caller never saw. aiohttp does not ask the resolver about IP literals, so the
socket factory checks the address of every socket it creates as well: nothing connects unvetted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import typing

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["BlockedAddress", "DNSResolutionError", "GuardedResolver", "is_public_ip", "make_connector"]

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
# Legacy numeric IPv4 spellings the C library still accepts: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
# What aiohttp's own resolver reports for numeric answers: the connector must not look them up again.
_NUMERIC_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class BlockedAddress(Exception):
    """A connection to a non-public address was refused (SSRF guard)."""

    def __init__(self, host: str, address: str | None = None):
        self.host, self.address = host, address
        why = f"{host} resolves to non-public address {address}" if address and address != host \
            else f"{host} is a non-public address"
        super().__init__(f"refused to fetch {host}: {why} (set BRIEFBOT_ALLOW_PRIVATE_URLS=1 to allow)")


class DNSResolutionError(OSError):
    """The host name did not resolve; aiohttp wraps it in ClientConnectorDNSError."""


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


def ip_literal(host: str) -> str | None:
    """The address an IP-literal host names (any spelling the C library accepts), else None."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses a host if ANY of its addresses is non-public.

    aiohttp connects only to the addresses a resolver returns, so the answer that was checked is
    the answer that is used: no second lookup for a rebinding DNS server to change. Pair it with
    `use_dns_cache=False` (see `make_connector`) so every new connection is resolved and checked
    afresh rather than served from a cache filled under an earlier answer.
    """

    def __init__(self, allow_private: bool = False, allowed_networks: typing.Iterable[str] = ()):
        self.allow_private = allow_private
        # Explicit exceptions (e.g. one internal feed server) without opening every private range.
        self.allowed_networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    def is_allowed(self, ip: str) -> bool:
        if self.allow_private or is_public_ip(ip):
            return True
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0].strip("[]"))
        except ValueError:
            return False
        return any(addr in net for net in self.allowed_networks if net.version == addr.version)

    def check_literal(self, host: str) -> None:
        """Raise BlockedAddress if `host` is an IP literal (in any spelling) that may not be reached."""
        if self.allow_private:
            return
        address = ip_literal(host)
        if address is not None and not self.is_allowed(address):
            raise BlockedAddress(host.strip("[]"), address)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        literal = ip_literal(host)
        if literal is not None:
            if not self.is_allowed(literal):
                raise BlockedAddress(host, literal)
            return [_result(host, literal, port, socket.AF_INET6 if ":" in literal else socket.AF_INET)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except (OSError, UnicodeError) as exc:
            raise DNSResolutionError(f"cannot resolve host {host!r}: {exc}") from exc
        results: list[ResolveResult] = []
        seen: set[str] = set()
        for info_family, _type, _proto, _canon, sockaddr in infos:
            if info_family == socket.AF_INET6 and len(sockaddr) < 3:
                continue  # IPv6 answer on a Python built without IPv6
            ip = str(sockaddr[0])
            if info_family == socket.AF_INET6 and sockaddr[3]:
                ip = f"{ip.split('%', 1)[0]}%{sockaddr[3]}"  # link-local needs its scope to be reached
            if ip in seen:
                continue
            seen.add(ip)
            # Refuse if *any* answer is non-public: a name that mixes public and private answers
            # is exactly what a rebinding attacker would serve.
            if not self.is_allowed(ip):
                raise BlockedAddress(host, ip.split("%", 1)[0])
            results.append(_result(host, ip, int(sockaddr[1]) or port, info_family))
        if not results:
            raise DNSResolutionError(f"cannot resolve host {host!r}: no addresses")
        return results

    async def close(self) -> None:
        pass

    def socket_factory(self, addr_info: tuple) -> socket.socket:
        """Creates each socket aiohttp connects; the last check, on the exact address it will reach.

        It catches what the resolver never sees: aiohttp skips the resolver for IP-literal hosts.
        """
        family, type_, proto, _canon, sockaddr = addr_info
        ip = str(sockaddr[0])
        if not self.is_allowed(ip):
            raise BlockedAddress(ip)
        return socket.socket(family=family, type=type_, proto=proto)


def _result(hostname: str, ip: str, port: int, family: int) -> ResolveResult:
    return ResolveResult(hostname=hostname, host=ip, port=port, family=family, proto=0, flags=_NUMERIC_FLAGS)


def make_connector(allow_private: bool, allowed_networks: typing.Iterable[str] = (),
                   **connector_kwargs: typing.Any) -> aiohttp.TCPConnector:
    """An aiohttp connector that refuses non-public addresses unless `allow_private`.

    `allowed_networks` (CIDRs) are reachable even when private ones are refused.
    `connector_kwargs` go to aiohttp.TCPConnector (limit=, limit_per_host=, keepalive_timeout=, ...);
    the resolver, socket factory and DNS cache are the guard's and cannot be overridden.
    Use the connector with a session that has `trust_env=False` and no `proxy=`: a proxy would make
    the connection on our behalf, out of the guard's sight.
    """
    for owned in ("resolver", "socket_factory", "use_dns_cache"):
        if owned in connector_kwargs:
            raise ValueError(f"make_connector: {owned}= is set by the SSRF guard")
    resolver = GuardedResolver(allow_private, allowed_networks)
    return aiohttp.TCPConnector(resolver=resolver, socket_factory=resolver.socket_factory,
                                use_dns_cache=False, **connector_kwargs)
