"""Feed bytes -> entries, read as feedparser reads them. A well-formed RSS / RDF / Atom document that
the lxml reader (`fastpath`) can read exactly as feedparser would is read there, for about a tenth
of feedparser's CPU; feedparser reads everything else (RSS 0.90, broken XML, charsets that need
guessing, entities from a DTD, ...). This module adds a safety pre-scan, classification of
"not a feed" bodies, and a uniform entry shape with clean text and aware UTC datetimes.
"""

from __future__ import annotations

import calendar
import io
import re
import xml.sax
from datetime import datetime, timezone
from urllib.parse import urljoin

from bot.ingest.charset import recover_charset
from bot.ingest.clean import clean_text, headline_from_text, html_to_text, plain_title, strip_boilerplate
from bot.ingest.entries import FeedParseError, ParsedEntry, ParsedFeed
from bot.ingest.fastpath import parse_common_feed
from bot.ingest.jsonfeed import is_json_feed, parse_json_feed

__all__ = ["ParsedEntry", "ParsedFeed", "FeedParseError", "parse_feed"]


# An entity declaration in the prolog is how billion-laughs and external-entity (XXE) payloads
# start. Real feeds don't need them (feedparser already knows the HTML entities).
_ENTITY_DECL_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT_START_RE = re.compile(rb"<[A-Za-z_]")
_HTML_RE = re.compile(rb"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)


def _prolog_bytes(body: bytes) -> bytes:
    """The bytes before the root element, as ASCII-compatible bytes (UTF-16/32 re-encoded)."""
    head = body
    for bom, codec in ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
                       (b"\x00<\x00?", "utf-16-be"), (b"<\x00?\x00", "utf-16-le")):
        if body.startswith(bom):
            head = body.decode(codec, "replace").encode("utf-8", "replace")
            break
    match = _ROOT_START_RE.search(head)
    return head[: match.start()] if match else head


def _check_prolog(body: bytes, url: str) -> None:
    if _ENTITY_DECL_RE.search(_prolog_bytes(body)):
        raise FeedParseError(url, "refused: the document declares XML entities in its DOCTYPE "
                                  "(entity-expansion / external-entity attack pattern)")


def _struct_to_datetime(value) -> datetime | None:
    if not value:
        return None
    try:
        # feedparser's *_parsed values are UTC struct_times.
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (OverflowError, ValueError, TypeError, OSError):
        return None


def _entry_published(entry) -> datetime | None:
    if "published_at" in entry:  # the fast path's entries carry the datetime already
        return entry["published_at"]
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        when = _struct_to_datetime(entry.get(key))
        if when is not None:
            return when
    return None


def _plain(value: str, detail: dict | None) -> str:
    return plain_title(value, (detail or {}).get("type", "text/plain"))


def _is_html(kind: str | None) -> bool:
    # Only a construct declared HTML (text/html, xhtml) holds markup; text/plain, and the rarer types
    # (octet-stream from base64 Atom 0.3, application/json ...) are shown as written.
    return "html" in (kind or "text/html")


def _plain_lines(value: str) -> str:
    """Declared-plain text as written: each line's space collapsed, empty lines dropped."""
    lines = (re.sub(r"\s+", " ", line).strip() for line in value.splitlines())
    return "\n".join(line for line in lines if line)


def _text_candidates(entry) -> list[tuple[str, str | None]]:
    """(value, content type) of each content and of the summary. feedparser copies the content into
    a missing summary and gives it no type of its own: the content's type applies."""
    contents = [c for c in entry.get("content") or [] if isinstance(c, dict)]
    summary_kind = (entry.get("summary_detail") or {}).get("type")
    if summary_kind is None and contents:
        summary_kind = contents[0].get("type")
    return [(c.get("value") or "", c.get("type")) for c in contents] + [(entry.get("summary") or "", summary_kind)]


_COMPLETE_TAG = re.compile(r"<[^<>]*>")


def _entry_text(entry) -> str:
    """Plain text of the richest (longest; the first of equals) of the entry's content and summary.

    Text is never longer than the HTML it comes from, so HTML shorter than the best text so far
    (a teaser summary next to the full content, or the same HTML again) is not converted."""
    best: str | None = None
    for value, kind in _text_candidates(entry):
        if best is not None and len(value) <= len(best):
            continue
        text = html_to_text(value) if _is_html(kind) else _plain_lines(value)
        if not text and value.strip() and not _COMPLETE_TAG.search(value):
            # "HTML" that is no markup at all (a lone "<!DOCTYPE") is the item's only text: keep it.
            text = _plain_lines(value)
        if best is None or len(text) > len(best):
            best = text
    return best


def _entry_link(entry, base: str) -> str | None:
    link = entry.get("link")
    if not link:
        for candidate in entry.get("links") or []:
            if candidate.get("href") and candidate.get("rel", "alternate") == "alternate":
                link = candidate["href"]
                break
    if not link:
        return None
    link = urljoin(base, link.strip())
    # An empty href resolves to the feed itself, which is no item's address (and as an identity it
    # would make every such item one).
    return link if link.startswith(("http://", "https://")) and link != base else None


def _to_entry(entry, base: str) -> ParsedEntry | None:
    title = _plain(entry.get("title") or "", entry.get("title_detail"))
    text = strip_boilerplate(clean_text(_entry_text(entry)))
    if not title and not text:
        return None
    title = title or headline_from_text(text)  # no brief goes out without a headline
    guid = (entry.get("id") or "").strip()
    guid = guid if guid and guid != base else None  # (as the link above)
    author = clean_text((entry.get("author") or "").strip()) or None
    return ParsedEntry(guid=guid, link=_entry_link(entry, base), title=title, text=text,
                       published=_entry_published(entry), author=author)


def _describe(exc: BaseException | None) -> str:
    import feedparser

    if exc is None:
        return "malformed feed"
    name = type(exc).__name__
    message = str(exc).strip()
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return f"charset mislabelled: {message}"
    if isinstance(exc, feedparser.CharacterEncodingUnknown):
        return f"unknown charset: {message}"
    if isinstance(exc, feedparser.NonXMLContentType):
        return f"unexpected content type: {message}"
    return f"malformed XML ({name}: {message})" if message else f"malformed XML ({name})"


def parse_feed(body: bytes, content_type: str | None, url: str) -> ParsedFeed:
    """Parse feed bytes; raises FeedParseError when there is nothing usable."""
    if not body or not body.strip():
        raise FeedParseError(url, "empty body (no feed content)")
    if is_json_feed(body, content_type):
        return parse_json_feed(body, url)
    _check_prolog(body, url)
    common = parse_common_feed(body, content_type, url)
    if common is None:
        return _parse_with_feedparser(body, content_type, url)
    entries = [e for e in (_to_entry(raw, url) for raw in common.entries) if e is not None]
    return ParsedFeed(title=_plain(common.title, {"type": common.title_type}), version=common.version,
                      encoding=common.encoding, entries=entries)


def _parse_with_feedparser(body: bytes, content_type: str | None, url: str) -> ParsedFeed:
    """Every document the fast path declines."""
    # Imported here, not at the top: most feeds never need it, and it costs every process that
    # parses (the bot and its parser worker) ~3 MB of heap.
    import feedparser
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # BytesIO, not bytes: feedparser treats a bare string argument as a possible URL or file path.
    # Relative links inside content are not resolved: html_to_text keeps an element's text and drops
    # its attributes, so the resolution (a sixth of feedparser's time) would change nothing read here.
    result = feedparser.parse(io.BytesIO(body), response_headers=headers, resolve_relative_uris=False)
    result = recover_charset(body, headers, result)
    version = result.get("version") or ""
    base = url
    entries = [e for e in (_to_entry(raw, base) for raw in result.get("entries") or []) if e is not None]

    exc = result.get("bozo_exception")
    problem = _describe(exc) if result.get("bozo") else None
    if content_type is None and isinstance(exc, feedparser.NonXMLContentType):
        problem = None  # the server sent no Content-Type at all; the XML itself is fine
    # Broken XML that yielded nothing is a failure (visible in `briefbot feeds`), not an empty "ok" feed.
    broken_xml = isinstance(exc, xml.sax.SAXException)
    if not entries and (not version or broken_xml):
        looks_html = _HTML_RE.search(body[:4096]) is not None or "html" in (content_type or "").lower()
        if looks_html:
            raise FeedParseError(url, "got an HTML page, not an RSS/Atom feed (is the feed URL right?)")
        reason = problem or "no RSS/Atom structure found"
        raise FeedParseError(url, f"not a parseable feed ({reason})")
    feed_title = _plain(result.feed.get("title") or "", result.feed.get("title_detail"))
    return ParsedFeed(title=feed_title, version=version, encoding=result.get("encoding") or "",
                      entries=entries, problem=problem)
