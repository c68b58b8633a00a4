"""URL helpers with no network code: the feed-parser worker process imports them without aiohttp."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_url"]


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


# Any scheme://… run in a message: errors quote feed and webhook URLs, which may carry keys.
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)


def hide_urls(text: str | None) -> str | None:
    """`text` with every URL in it replaced by "[url hidden]" (None and "" pass through)."""
    return _URL_IN_TEXT.sub("[url hidden]", text) if text else text
