"""An entry's identity, so the same item is never briefed twice — across polls, restarts
and publishers that churn GUIDs."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|spm|from|source|ref|share)$", re.I)


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def canonical_link(url: str | None) -> str | None:
    """Lower-case scheme/host, no fragment, no tracking parameters, no trailing slash."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip() or None
    if not parts.netloc:
        return url.strip() or None
    # Most links have no query: nothing to parse, sort and re-encode.
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not _TRACKING_PARAMS.match(k))) if parts.query else ""
    path = parts.path.rstrip("/") or "/"
    host = parts.netloc.lower().removeprefix("www.")
    return urlunsplit(("https" if parts.scheme in ("http", "https") else parts.scheme, host, path, query, ""))


def _content_norm(text: str) -> str:
    # str.split() splits on exactly the characters \s matches: the same as sub(r"\s+", " ").strip(), faster.
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


@dataclass(frozen=True)
class ItemIdentity:
    item_key: str  # the primary key within a feed
    link_key: str | None
    content_key: str | None


def identify(guid: str | None, link: str | None, title: str, text: str,
             published: datetime | None) -> ItemIdentity:
    canon = canonical_link(link)
    link_key = _h(canon) if canon else None
    title_norm = _content_norm(title)
    content = title_norm + "\x1f" + _content_norm(text)[:600]
    content_key = _h(content) if title or text else None
    if guid and guid.strip():
        item_key = "g:" + _h(guid.strip())
    elif link_key:
        item_key = "l:" + link_key
    else:
        stamp = published.isoformat() if published else ""
        item_key = "h:" + _h(title_norm + "\x1f" + stamp)
    return ItemIdentity(item_key, link_key, content_key)
