"""An entry's identity, so the same item is never briefed twice — across polls, restarts
and publishers that churn GUIDs."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|spm|from|source|ref|share)$", re.I)


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


# An http(s) URL that urlsplit takes apart without stripping, removing, checking or rejecting
# anything (no control characters or spaces before the fragment, no IPv6 brackets in the netloc):
# scheme, netloc, path and query, fragment. For these, canonical_link needs neither urlsplit
# nor urlunsplit.
_PLAIN_URL_RE = re.compile(r"([Hh][Tt][Tt][Pp][Ss]?)://([^\x00-\x20\x7f-\U0010ffff/?#\[\]]+)"
                           r"((?:[/?][^\x00-\x20\x7f-\U0010ffff#]*)?)(#.*)?", re.S)


def _canonical_query(query: str) -> str:
    return urlencode(sorted((k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                            if not _TRACKING_PARAMS.match(k)))


def canonical_link(url: str | None) -> str | None:
    """Lower-case scheme/host, no fragment, no tracking parameters, no trailing slash."""
    if not url:
        return None
    stripped = url.strip()
    plain = _PLAIN_URL_RE.fullmatch(stripped)
    if plain:
        # What urlsplit gives: the netloc ends at the first "/", "?" or "#"; the fragment is cut
        # first, then the query. urlunsplit joins them back as below (the path starts with "/").
        path, _, query = plain.group(3).partition("?")
        host = plain.group(2).lower().removeprefix("www.")
        if host:  # else urlunsplit would not write the "//"
            path = path.rstrip("/") or "/"
            query = _canonical_query(query) if query else ""
            return "https://" + host + path + ("?" + query if query else "")
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return stripped or None
    if not parts.netloc:
        return stripped or None
    # Most links have no query: nothing to parse, sort and re-encode.
    query = _canonical_query(parts.query) if parts.query else ""
    path = parts.path.rstrip("/") or "/"
    host = parts.netloc.lower().removeprefix("www.")
    return urlunsplit(("https" if parts.scheme in ("http", "https") else parts.scheme, host, path, query, ""))


# Characters that may not be NFKC on their own: all but ASCII and the CJK Unified Ideographs.
_MAY_CHANGE_RE = re.compile(r"[^\x00-\x7f\u4e00-\u9fff]")


@functools.lru_cache(maxsize=4096)
def _nfkc_char(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch)


def _nfkc(text: str) -> str:
    """unicodedata.normalize("NFKC", text)."""
    if text.isascii():
        return text  # ASCII is NFKC already
    # Chinese text is seldom NFKC, for its full-width punctuation ("，", "："), and normalize() then
    # rebuilds it character by character (~70 ns each). Replacing each such character by its own
    # NFKC first does not change the NFKC of the text (the character and its NFKC are
    # compatibility-equivalent, so the texts are too) and usually leaves a text that is NFKC
    # already, which normalize() only checks.
    for ch in set(_MAY_CHANGE_RE.findall(text)):
        folded = _nfkc_char(ch)
        if folded != ch:
            text = text.replace(ch, folded)
    return unicodedata.normalize("NFKC", text)


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _collapse_spaces(text: str) -> str:
    """" ".join(text.split()): runs of whitespace to one space, none at the ends (str.split() splits
    on exactly the characters \s matches: the same as sub(r"\s+", " ").strip(), faster)."""
    # Usually the only whitespace besides single spaces is "\n" (between paragraphs): as spaces,
    # they split the same. When no other whitespace is left (no double space, and no control
    # character, which all other ASCII whitespace is), the result is the text stripped.
    spaced = text.replace("\n\n", " ").replace("\n", " ")
    if spaced.isascii() and "  " not in spaced and not spaced.encode().translate(None, _PRINTABLE_ASCII):
        return spaced.strip(" ")
    return " ".join(text.split())


def _content_norm(text: str) -> str:
    return _collapse_spaces(_nfkc(text)).casefold()


def _content_norm_head(text: str, size: int) -> str:
    """_content_norm(text)[:size], normalising only as much of the text as that needs."""
    # Cut right before an ASCII space or newline, NFKC, whitespace collapsing and case folding work
    # on the two parts separately (an ASCII character starts a new NFKC segment: nothing composes
    # with it or is reordered past it; the space or newline separates words; case folding goes
    # character by character), so _content_norm of the first part is a prefix of _content_norm of
    # the whole: enough when it has `size` characters.
    start = size + size // 4
    cuts = [i for i in (text.find(" ", start), text.find("\n", start)) if i >= 0]
    if cuts:
        head = _content_norm(text[:min(cuts)])
        if len(head) >= size:
            return head[:size]
    return _content_norm(text)[:size]


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
    content = title_norm + "\x1f" + _content_norm_head(text, 600)
    content_key = _h(content) if title or text else None
    if guid and guid.strip():
        item_key = "g:" + _h(guid.strip())
    elif link_key:
        item_key = "l:" + link_key
    else:
        stamp = published.isoformat() if published else ""
        item_key = "h:" + _h(title_norm + "\x1f" + stamp)
    return ItemIdentity(item_key, link_key, content_key)
