"""An entry's identity, so the same item is never briefed twice — across polls, restarts
and publishers that churn GUIDs.

The keys are stored: any change to how they are computed makes every stored item look new.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|spm|from|source|ref|share)$", re.I)
# The content key covers the title and this many characters of the normalised body.
_CONTENT_HEAD = 600


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def canonical_link(url: str | None) -> str | None:
    """Lower-case scheme/host, no fragment, no tracking parameters, no trailing slash."""
    if not url:
        return None
    stripped = url.strip()
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return stripped or None
    if not parts.netloc:
        return stripped or None
    query = parts.query and urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                                             if not _TRACKING_PARAMS.match(k)))
    path = parts.path.rstrip("/") or "/"
    host = parts.netloc.lower().removeprefix("www.")
    return urlunsplit(("https" if parts.scheme in ("http", "https") else parts.scheme, host, path, query, ""))


# An entry's title and text are folded for its identity and topics, and again where its story
# names are found (bot.analyse.story_names): the last few results are kept.
@functools.lru_cache(maxsize=8)
def fold(text: str) -> str:
    """NFKC, case-folded: the form in which the content key, topic matching and story names compare texts."""
    return unicodedata.normalize("NFKC", text).casefold()


def _content_norm(folded: str) -> str:
    """fold()ed text with whitespace runs to one space (str.split() splits on exactly what \\s matches)."""
    return " ".join(folded.split())


@dataclass(frozen=True)
class ItemIdentity:
    item_key: str  # the primary key within a feed
    link_key: str | None
    content_key: str | None


def identify(guid: str | None, link: str | None, title: str, text: str,
             published: datetime | None, folded: tuple[str, str] | None = None) -> ItemIdentity:
    """`folded`: (fold(title), fold(text)), for a caller that has them already."""
    folded_title, folded_text = folded or (fold(title), fold(text))
    canon = canonical_link(link)
    link_key = _h(canon) if canon else None
    title_norm = _content_norm(folded_title)
    content = title_norm + "\x1f" + _content_norm(folded_text)[:_CONTENT_HEAD]
    content_key = _h(content) if title or text else None
    if guid and guid.strip():
        item_key = "g:" + _h(guid.strip())
    elif link_key:
        item_key = "l:" + link_key
    else:
        stamp = published.isoformat() if published else ""
        item_key = "h:" + _h(title_norm + "\x1f" + stamp)
    return ItemIdentity(item_key, link_key, content_key)
