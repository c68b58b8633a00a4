"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1) read into the entries RSS and Atom give.

The same identity rules as the XML readers: an item's `id` is its GUID, `url` its link
(`external_url` when there is no `url`), relative URLs are joined on the feed's home page, its
feed URL or the address it was fetched from, and neither may be the feed's own address. Text is
the item's `content_html` as plain text, else `content_text` as written, else its `summary`.
"""

from __future__ import annotations

import email.utils
import json
from datetime import datetime, timezone
from urllib.parse import urljoin

from bot.ingest.clean import clean_text, headline_from_text, html_to_text, plain_title, strip_boilerplate
from bot.ingest.entries import FeedParseError, ParsedEntry, ParsedFeed

__all__ = ["is_json_feed", "parse_json_feed"]

_VERSION_PREFIX = "https://jsonfeed.org/version/"
# feedparser's names for the two versions, so `version` reads the same whichever reader ran.
_VERSIONS = {"1": "json1", "1.1": "json11"}
_JSON_MEDIA_TYPES = ("application/feed+json", "application/json")
_BOMS = (b"\xef\xbb\xbf",)


def _first_byte(body: bytes) -> bytes:
    for bom in _BOMS:
        if body.startswith(bom):
            body = body[len(bom):]
    return body.lstrip()[:1]


def is_json_feed(body: bytes, content_type: str | None) -> bool:
    """A body to read as JSON: served as JSON (unless it is plainly markup), or an object whatever
    the label — no XML or HTML document starts with "{"."""
    first = _first_byte(body)
    if first == b"{":
        return True
    media = (content_type or "").partition(";")[0].strip().lower()
    return first != b"<" and (media in _JSON_MEDIA_TYPES or media.endswith("+json"))


def _load(body: bytes, url: str) -> dict:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        offset = exc.start + len(body) - len(exc.object)  # the decoder's offsets skip a BOM
        raise FeedParseError(url, f"JSON Feed is not UTF-8 (byte 0x{body[offset]:02x} at offset {offset})")
    except json.JSONDecodeError as exc:
        raise FeedParseError(url, f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})")
    except RecursionError:
        raise FeedParseError(url, "not a JSON Feed (the JSON is nested too deeply)")
    if not isinstance(doc, dict):
        raise FeedParseError(url, f"not a JSON Feed (the JSON is {type(doc).__name__}, not an object)")
    version = doc.get("version")
    if not isinstance(version, str) or not version.startswith(_VERSION_PREFIX):
        raise FeedParseError(url, f'not a JSON Feed (no "version": "{_VERSION_PREFIX}1.1")')
    if not isinstance(doc.get("items"), list):
        raise FeedParseError(url, 'not a usable JSON Feed (no "items" list)')
    return doc


def _string(value) -> str:
    return value if isinstance(value, str) else ""


def _line(value) -> str:
    """A one-line plain-text field (a title, a name) as the XML readers give one."""
    return plain_title(_string(value), None)


def _as_id(value) -> str:
    """The spec's rule: an id given as a number (or other scalar) is read as a string."""
    if isinstance(value, str):
        return value.strip()
    if value is None or isinstance(value, (dict, list)):
        return ""
    return json.dumps(value)


def parse_date(value) -> datetime | None:
    """An RFC 3339 date (the spec's format) or, as some publishers write, an RFC 822 one -> aware UTC."""
    text = _string(value).strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.upper())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:  # no offset given: read as UTC, as feedparser reads such dates
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _authors(holder: dict) -> str | None:
    """Names from 1.1's `authors` list or 1.0's `author` object."""
    people = holder.get("authors")
    if not isinstance(people, list):
        people = [holder.get("author")]
    names = [_line(p.get("name")) if isinstance(p, dict) else _line(p) for p in people]
    return ", ".join(n for n in names if n) or None


def _entry_text(item: dict) -> str:
    """The first of content_html (as text), content_text and summary (plain: as written) that has
    text, cleaned as the XML readers clean theirs."""
    for key in ("content_html", "content_text", "summary"):
        value = _string(item.get(key))
        text = strip_boilerplate(clean_text(html_to_text(value) if key == "content_html" else value.strip()))
        if text:
            return text
    return ""


class _Addresses:
    """Joins an item's URLs on the feed's base and refuses the feed's own address as an item's."""

    def __init__(self, doc: dict, url: str):
        home = _string(doc.get("home_page_url")).strip()
        feed_url = _string(doc.get("feed_url")).strip()
        self.base = urljoin(url, home or feed_url)
        self.feed_addresses = {url, urljoin(url, feed_url)} if feed_url else {url}

    def join(self, value) -> str | None:
        value = _string(value).strip()
        if not value:
            return None
        joined = urljoin(self.base, value)
        if not joined.startswith(("http://", "https://")) or joined in self.feed_addresses:
            return None
        return joined

    def link(self, item: dict) -> str | None:
        return self.join(item.get("url")) or self.join(item.get("external_url"))

    def guid(self, item: dict) -> str | None:
        guid = _as_id(item.get("id"))
        return guid if guid and guid not in self.feed_addresses else None


def _to_entry(item: dict, addresses: _Addresses, feed_author: str | None) -> ParsedEntry | None:
    title = _line(item.get("title"))
    text = _entry_text(item)
    if not title and not text:
        return None
    title = title or headline_from_text(text)  # no brief goes out without a headline
    published = parse_date(item.get("date_published")) or parse_date(item.get("date_modified"))
    return ParsedEntry(guid=addresses.guid(item), link=addresses.link(item), title=title, text=text,
                       published=published, author=_authors(item) or feed_author)


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """Read a JSON Feed; raises FeedParseError, with one reason, when it is not one."""
    doc = _load(body, url)
    number = doc["version"][len(_VERSION_PREFIX):].strip("/")
    addresses = _Addresses(doc, url)
    # Items without their own authors are by the feed's (the spec's rule).
    feed_author = _authors(doc)
    items = doc["items"]
    entries = [e for e in (_to_entry(i, addresses, feed_author) for i in items if isinstance(i, dict)) if e]
    problems = []
    if number not in _VERSIONS:
        problems.append(f"unknown JSON Feed version {doc['version']!r}, read as 1.1")
    skipped = sum(1 for i in items if not isinstance(i, dict))
    if skipped:
        problems.append(f"{skipped} item(s) are not JSON objects")
    return ParsedFeed(title=_line(doc.get("title")), version=_VERSIONS.get(number, "json"), encoding="utf-8",
                      entries=entries, problem="; ".join(problems) or None)
