"""A feed URL that can never be fetched is refused at `check`, with the reason.

The reason names the part that is wrong (scheme, host, port) and never repeats the whole URL:
a feed URL may carry credentials in its user part or query."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from bot.config.errors import short_repr

MAX_URL_CHARS = 2048
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACE = re.compile(r"\s")


def feed_url_problem(url: str) -> str | None:
    """Why `url` can never be fetched, or None when it can be tried."""
    if len(url) > MAX_URL_CHARS:
        return f"URL is {len(url):,} characters long (at most {MAX_URL_CHARS:,})"
    if _CONTROL.search(url):
        return "URL contains a control character (a stray tab or line break?)"
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # unbalanced or invalid [IPv6] brackets; the message names only the host
        return f"not a valid URL: {str(exc)[:100]}"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http(s) URL"
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return f"unexpected text after the IPv6 address: {short_repr(rest, 30)}"
        problem = None if _is_ipv6(host) else f"host [{short_repr(host, 40)[1:-1]}] is not an IPv6 address"
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
        problem = _host_problem(host)
    return problem or _port_problem(port)


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text.partition("%")[0]), ipaddress.IPv6Address)
    except ValueError:
        return False


def _host_problem(host: str) -> str | None:
    if not host:
        return "URL has no host"
    if _SPACE.search(host):
        return f"host {short_repr(host, 60)} contains a space"
    try:
        # International names are fetched in their ASCII form; a name that has none cannot be fetched.
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return f"host {short_repr(host, 60)} is not a valid host name"
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        return f"host {short_repr(host, 60)} is not a valid host name"
    return None


def _port_problem(port: str | None) -> str | None:
    if port is None or port == "":
        return None
    if not (port.isascii() and port.isdigit()):
        return f"port {short_repr(port, 20)} is not a number"
    if len(port) > 5 or not 1 <= int(port) <= 65535:
        return f"port {short_repr(port, 20)[1:-1]} is out of range (1-65535)"
    return None
