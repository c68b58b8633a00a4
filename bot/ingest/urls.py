"""URL helpers with no network code: the feed-parser worker process imports them without aiohttp."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

__all__ = ["join_url", "redact_url"]

# Characters urljoin's parse and reassembly may drop, split on or refuse: "\t\r\n" (removed), ";"
# (path parameters), "[" "]" (IPv6 hosts, validated).
_REASSEMBLY_CHARS = frozenset("\t\r\n;[]")


def join_url(base: str, uri: str) -> str:
    """urljoin(base, uri), raising ValueError as it does; the same result, without parsing both and
    reassembling the second, when `uri` is an absolute http(s) URL that comes out unchanged (feeds
    give most links in full, and a cold poll joins tens of thousands).

    urljoin returns such a URL as given when its scheme differs from the base's, else as
    urlunparse(urlparse(uri)), which is `uri` again unless it has an empty query ("…?", "…?#…") or
    fragment ("…#"), path parameters, characters it removes, or a host it validates (IPv6, or one
    not in ASCII). `uri` must also have a host: "http:///x" is another case."""
    if uri.startswith(("http://", "https://")) and uri.isascii():
        host_at = 7 if uri[4] == ":" else 8
        if (uri[host_at:host_at + 1] not in ("", "/", "?", "#") and not uri.endswith(("?", "#"))
                and "?#" not in uri and _REASSEMBLY_CHARS.isdisjoint(uri)):
            return uri
    return urljoin(base, uri)


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
