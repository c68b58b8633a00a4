"""The common case read quickly: a well-formed RSS 0.91-2.0, RSS 1.0 (RDF) or Atom 1.0 document,
parsed with lxml.

feedparser parses in Python and then sanitises and resolves every field, ten times the CPU of the
rest of a poll for a typical 20-item feed; lxml reads the same document for a small fraction of
that. So the usual document takes this path (xml:base, Atom XHTML constructs and a DOCTYPE
feedparser removes included) and everything else returns None and goes to feedparser: RSS 0.90,
malformed XML, a DOCTYPE with an internal subset or with entities only a DTD defines (&nbsp;),
charsets other than UTF-8 / ASCII / GB*, elements feedparser maps in ways this module does not
model (including elements nested inside ignored ones, and an item's second title or description),
XHTML holding anything but XHTML in one <div>, and anything where feedparser's reading is hard to
reproduce exactly (a title holding markup or an entity, an empty link, GUID or id, an address in a
link's attributes, a "base" attribute other than xml:base, text feedparser re-decodes: C1
characters, double-encoded UTF-8). When unsure, decline: never guess.

The output is the subset of feedparser's entry keys that `bot.ingest.parse` reads, with the same
values (tests compare this path with feedparser field by field). Sanitising is not needed here:
entry HTML is only ever turned into plain text, which drops script/style and every tag; HTML where
the sanitiser would change that text (it keeps what is inside <object>, <noscript>, <svg> ...) goes
to feedparser.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from lxml import etree

from bot.ingest.fastpath_markup import NotCommon, doctype_version, has_other_base_attribute, rebase, xhtml_markup

__all__ = ["FastFeed", "parse_common_feed"]

_ATOM = "{http://www.w3.org/2005/Atom}"
_RSS1 = "{http://purl.org/rss/1.0/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC = "{http://purl.org/dc/elements/1.1/}"

# Item children this module models, by the name used below. Anything else in an item may be
# something feedparser maps onto a field read downstream (itunes:summary, dc:description,
# media:description, xhtml:body ...), so an unknown child sends the whole document to feedparser.
_RSS_READ = {"title": "title", "link": "link", "guid": "guid", "description": "description", "pubDate": "published",
             "author": "author", _CONTENT_ENCODED: "content", _DC + "creator": "author", _DC + "date": "updated"}
_RSS_IGNORED = frozenset({"category", "comments", "enclosure", "{http://purl.org/rss/1.0/modules/slash/}comments",
                          "{http://wellformedweb.org/CommentAPI/}commentRss", _DC + "subject",
                          "{http://search.yahoo.com/mrss/}thumbnail", "{http://search.yahoo.com/mrss/}content"})
# RSS 1.0 names its own elements in its namespace; the modules' elements are as in RSS 2.0.
_RDF_READ = {_RSS1 + "title": "title", _RSS1 + "link": "link", _RSS1 + "description": "description",
             _CONTENT_ENCODED: "content", _DC + "creator": "author", _DC + "date": "updated"}
_RDF_IGNORED = frozenset(tag for tag in _RSS_IGNORED if tag.startswith("{"))
# What an RDF <image> or <textinput> holds: feedparser stores none of it once the channel has ended.
_RDF_FURNITURE = frozenset(_RSS1 + n for n in ("title", "link", "url", "description", "name"))

_XML_ATTRIBUTES = frozenset("{http://www.w3.org/XML/1998/namespace}" + n for n in ("base", "lang"))
_MEDIA = "{http://search.yahoo.com/mrss/}"
# Children an ignored item element may have. feedparser maps nested elements wherever they are
# (a media:title inside an enclosure, an image's title inside a category become the entry's
# title), so any other child sends the document to feedparser; these map onto nothing read here.
_HARMLESS_NESTED = frozenset(_MEDIA + n for n in ("thumbnail", "credit", "rating", "player", "restriction",
                                                   "license", "keywords", "category", "hash"))
_ATOM_IGNORED = frozenset({_ATOM + "category", _ATOM + "rights", _ATOM + "contributor"})
_ATOM_MODELLED = frozenset({_ATOM + n for n in ("title", "link", "id", "summary", "content", "published",
                                                "updated", "author")})

# feedparser drops extra slashes after the scheme ("http:///x" -> "http://x") before joining; the
# same rule here keeps item identities (GUIDs and links) equal on both paths.
_EXTRA_SLASHES_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")


def _urljoin(base: str, uri: str) -> str:
    try:
        return urljoin(base, _EXTRA_SLASHES_RE.sub(r"\1\3", uri))
    except ValueError:
        return ""


_XML_DECL_ENCODING_RE = re.compile(rb'^<\?xml[^>]*?encoding\s*=\s*["\']([A-Za-z0-9._:-]+)["\']')
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Charsets this path decodes exactly as feedparser does. feedparser reads ISO-8859-1 as
# Windows-1252 and guesses at mislabelled documents; those go to it.
_DECODED_HERE = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "gbk", "gb18030"})
# Labels that read ASCII bytes as ASCII: an unlabelled ASCII document is "iso-8859-1" to feedparser.
_ASCII_LABELS = frozenset({"iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252"})


def _xml_parser() -> etree.XMLParser:
    # One per document: lxml parsers must not be shared between threads. The bytes handed over are
    # always UTF-8 (re-encoded after the charset decision above), whatever the declaration says.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=True, remove_pis=True, encoding="utf-8")


class FastFeed:
    __slots__ = ("version", "encoding", "title", "title_type", "entries")

    def __init__(self, version: str, encoding: str, title: str, title_type: str, entries: list[dict]):
        self.version, self.encoding, self.title, self.title_type, self.entries = (
            version, encoding, title, title_type, entries)


def _rfc3023_encoding(body: bytes, content_type: str | None) -> str | None:
    """The charset feedparser would decode with first (RFC 3023), or None when this path should not
    decide: a BOM, a non-XML media type, a charset feedparser may read differently, or non-ASCII
    bytes with no charset named anywhere (feedparser then detects one)."""
    if body[:3] == b"\xef\xbb\xbf" or body[:2] in (b"\xfe\xff", b"\xff\xfe") or body[:1] == b"\x00":
        return None
    match = _XML_DECL_ENCODING_RE.match(body)
    declared = match.group(1).decode("ascii").lower() if match else ""
    http_charset = ""
    if content_type is None:
        encoding = declared or "iso-8859-1"
    else:
        media, _, params = content_type.partition(";")
        media = media.strip().lower()
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                http_charset = value.strip().strip("\"'").lower()
        if media in ("application/xml", "text/xml") or (media.startswith(("application/", "text/"))
                                                         and media.endswith("+xml")):
            encoding = http_charset or (declared if media.startswith("application/") else "us-ascii") or "utf-8"
        else:
            return None  # feedparser reports "not an XML media type"; let it
    encoding = "gb18030" if encoding == "gb2312" else encoding
    if body.isascii():
        return encoding if encoding in _DECODED_HERE or encoding in _ASCII_LABELS else None
    if not (declared or http_charset) or encoding not in _DECODED_HERE:
        return None
    return encoding


def _text(element) -> str:
    return element.text or ""


def _title(value: str) -> str:
    # After the XML parse, "&" or "<" left in a title is an entity or markup that feedparser decodes
    # or strips by rules of its own (RSS titles may be HTML, CDATA may hide a second escaping).
    if "&" in value or "<" in value:
        raise NotCommon("entity or markup in a title")
    return value


def _identity(value: str, base: str | None) -> str:
    """A link or id, resolved against `base` unless that is None. An empty one would resolve to the
    feed's own URL, which feedparser does not do everywhere: such documents go to it."""
    value = value.strip()
    if not value:
        raise NotCommon("empty link or id")
    return value if base is None else _urljoin(base, value)


def _date(value: str) -> datetime | None:
    """A date as feedparser would give it (UTC, whole seconds); RFC 822 and ISO 8601 fast, the rest
    through feedparser's own date parsers."""
    value = value.strip()
    if not value:
        return None
    when = None
    try:
        if value[:4].isdigit():
            when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        else:
            when = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError):
        when = None
    if when is not None and when.tzinfo is not None and 1900 < when.year < 9999:
        return when.astimezone(timezone.utc).replace(microsecond=0)
    # Anything else (W3C-DTF variants, Korean, Greek, Hungarian dates ...) through feedparser's own
    # date parsers, imported only then.
    from feedparser.datetimes import _parse_date as feedparser_parse_date

    parsed = feedparser_parse_date(value)
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=timezone.utc)
    except (ValueError, TypeError):
        return None


def _first_date(*values: str | None) -> datetime | None:
    for value in values:
        if value:
            when = _date(value)
            if when is not None:
                return when
    return None


def _same_base(base: str, element) -> str:
    return base  # a document without xml:base: everything resolves against its URL


def _rss_entries(items, base: str, rebase, read: dict, ignored: frozenset) -> list[dict]:
    return [_rss_entry(item, rebase(base, item), rebase, read, ignored) for item in items]


def _rss_entry(item, base: str, rebase, read: dict, ignored: frozenset) -> dict:
    about = item.get(_RDF + "about")  # feedparser takes an rdf:about as the item's id, as written
    entry: dict = {"id": about} if about else {}
    if item.attrib and any(attribute.rpartition("}")[2].lower() in ("href", "lastmod") for attribute in item.attrib):
        raise NotCommon("item attributes feedparser maps")
    guid_is_link = False
    dates = {"published": None, "updated": None}
    authors: list[str] = []
    for child in item:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag in ignored:
            if any(isinstance(n.tag, str) and n.tag not in _HARMLESS_NESTED for n in child.iterdescendants()):
                raise NotCommon(f"elements nested in {tag}")
            continue
        name = read.get(tag)
        if name is None or len(child):
            raise NotCommon(tag)  # unknown mapping, or markup where text belongs
        value = _text(child)
        if (name == "title" and "title" in entry) or (name == "description" and "summary" in entry):
            # feedparser keeps an item's first title, and reads a second description as content
            raise NotCommon(f"a second {name}")
        if name == "title":
            entry["title"] = _title(value)
        elif name == "link":
            if child.attrib and any(attribute not in _XML_ATTRIBUTES for attribute in child.attrib):
                # feedparser takes a url/uri/href attribute over the text
                raise NotCommon("attributes on an RSS link")
            entry["link"] = _identity(value, rebase(base, child))
        elif name == "guid":
            guid_is_link = child.get("isPermaLink", "true") == "true"
            # feedparser resolves a permalink GUID against the feed URL ("a1" -> ".../a1"); stored
            # item identities depend on it.
            entry["id"] = _identity(value, rebase(base, child) if guid_is_link else None)
        elif name == "description":  # RSS descriptions and content:encoded are HTML
            entry["summary"], entry["summary_detail"] = value, {"type": "text/html"}
        elif name == "content":
            entry.setdefault("content", []).append({"value": value, "type": "text/html"})
        elif name == "author":
            authors.append(value)
        else:
            dates[name] = value
    if guid_is_link and not entry.get("link") and entry.get("id"):
        entry["link"] = entry["id"]
    if authors:
        entry["author"] = authors[-1].strip()
    entry["published_at"] = _first_date(dates["published"], dates["updated"])
    entry["title_detail"] = {"type": "text/plain"}
    return entry


_XHTML_TYPE = "application/xhtml+xml"


def _atom_text(element) -> tuple[str, str]:
    """(value, content type) of an Atom text construct."""
    kind = (element.get("type") or "text").lower()
    if kind in ("xhtml", _XHTML_TYPE):
        return xhtml_markup(element), _XHTML_TYPE
    if len(element):
        raise NotCommon("markup in a text construct")
    if kind in ("html", "text/html"):
        return _text(element), "text/html"
    if kind in ("text", "text/plain"):
        return _text(element), "text/plain"
    raise NotCommon(f"content type {kind}")


def _atom_title(element) -> tuple[str, str]:
    title, kind = _atom_text(element)
    # XHTML is markup by definition: it is read as HTML, and checked as entry HTML is.
    return (title if kind == _XHTML_TYPE else _title(title)), kind


def _atom_entries(feed, base: str, rebase) -> list[dict]:
    return [_atom_entry(item, rebase(base, item), rebase) for item in feed.iterchildren(_ATOM + "entry")]


def _atom_entry(item, base: str, rebase) -> dict:
    entry: dict = {}
    dates = {"published": None, "updated": None}
    for child in item:
        tag = child.tag
        if not isinstance(tag, str) or tag in _ATOM_IGNORED:
            continue
        if tag not in _ATOM_MODELLED:
            raise NotCommon(tag)
        if tag == _ATOM + "title":
            if "title" in entry:
                raise NotCommon("a second title")  # feedparser keeps the first
            entry["title"], kind = _atom_title(child)
            entry["title_detail"] = {"type": kind}
        elif tag == _ATOM + "link":
            rel = child.get("rel", "alternate")
            kind = child.get("type", "application/atom+xml" if rel == "self" else "text/html")
            if child.get("url") is not None or child.get("uri") is not None:
                raise NotCommon("link address outside href")  # feedparser prefers url, then uri
            href = child.get("href")
            if href is not None and rel == "alternate" and kind in _HTML_TYPES:
                entry["link"] = _identity(href, rebase(base, child))  # the last one wins, as in feedparser
        elif tag == _ATOM + "id":
            entry["id"] = _identity(_text(child), rebase(base, child))
        elif tag == _ATOM + "summary":
            if "summary" in entry:
                raise NotCommon("a second summary")  # feedparser may read it as content
            summary, kind = _atom_text(child)
            entry["summary"], entry["summary_detail"] = summary, {"type": kind}
        elif tag == _ATOM + "content":
            if child.get("src"):
                raise NotCommon("out-of-line content")
            value, kind = _atom_text(child)
            entry.setdefault("content", []).append({"value": value, "type": kind})
        elif tag == _ATOM + "author":
            _atom_author(child, entry)
        else:
            dates[tag[len(_ATOM):]] = _text(child)
    if "link" not in entry and entry.get("id"):
        entry["link"] = entry["id"]  # as feedparser: an Atom id doubles as the link
    entry["published_at"] = _first_date(dates["published"], dates["updated"])
    entry.setdefault("title_detail", {"type": "text/plain"})
    return entry


def _atom_author(element, entry: dict) -> None:
    name = email = ""
    for part in element:
        if part.tag == _ATOM + "name":
            name = _text(part).strip()
        elif part.tag == _ATOM + "email":
            email = _text(part).strip()
    author = f"{name} ({email})" if name and email else (name or email)
    if author:
        entry["author"] = author


_C1_RE = re.compile("[\u0080-\u009f]")


def _rewritten_by_feedparser(value: str) -> bool:
    """Whether feedparser changes this text after parsing it: it reads C1 control characters as the
    Windows-1252 characters of those bytes, and re-reads text that is wholly Latin-1 and valid UTF-8
    as UTF-8 (undoing a double encoding)."""
    if value.isascii():
        return False
    if _C1_RE.search(value):
        return True
    try:
        value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


# HTML that feedparser's sanitiser and the HTML-to-text step read differently: the sanitiser
# removes these elements' tags but keeps their text, which the text step skips (an empty iframe,
# the usual video embed, holds no text) or breaks into paragraphs at (main, hgroup, summary); it
# rewrites markup inside elements whose content the text step reads as written (textarea, xmp ...),
# and lets out the entities in a script or style the text step drops; a DOCTYPE, a head or a CDATA
# section inside the HTML. End tags and the usual tags are passed over first: they are most of it.
_SANITISED_APART_RE = re.compile(
    r"<(?!/|(?:p|a|b|i|br|li|ul|ol|em|div|span|strong|h[1-6])[\s>/])"
    r"(?:(?:object|embed|applet|noscript|template|canvas|select|button|svg|math|head|title|html|main|hgroup"
    r"|summary|textarea|xmp|plaintext|listing|noembed|noframes)\b"
    r"|script\b(?:(?!</script).)*&|style\b(?:(?!</style).)*&"
    r"|iframe\b(?![^>]*>\s*</iframe>)|!doctype|!\[CDATA\[)", re.IGNORECASE | re.DOTALL)


def _check_reads_alike(feed: FastFeed) -> None:
    """Raise NotCommon for text feedparser would change after parsing it."""
    values = [feed.title]
    html = [feed.title] if feed.title_type == _XHTML_TYPE else []
    for entry in feed.entries:
        values += [entry.get(key) or "" for key in ("title", "link", "id", "summary", "author")]
        values += [c["value"] for c in entry.get("content") or ()]
        html += [c["value"] for c in entry.get("content") or () if "html" in c["type"]]
        if "html" in entry.get("summary_detail", {}).get("type", ""):
            html.append(entry["summary"])
        if entry["title_detail"]["type"] == _XHTML_TYPE:
            html.append(entry["title"])
    if any(_rewritten_by_feedparser(value) for value in values):
        raise NotCommon("text feedparser re-decodes")
    if any("<" in value and _SANITISED_APART_RE.search(value) for value in html):
        raise NotCommon("HTML feedparser's sanitiser reads apart")


# feedparser names the version after the first of these namespaces a document declares (an
# RSS root then corrects anything but an RSS version from its version attribute).
_NAMESPACE_VERSIONS = {"http://purl.org/rss/1.0/": "rss10", "http://www.w3.org/2005/atom": "atom10"}
_RSS_VERSIONS = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}


def _declared_version(root) -> str:
    for prefix, uri in root.nsmap.items():
        uri = uri.lower()
        if prefix is None and uri == "http://my.netscape.com/rdf/simple/0.9/":
            return "rss090"
        if uri in _NAMESPACE_VERSIONS:
            return _NAMESPACE_VERSIONS[uri]
    return ""


def _rss_feed(root, declared: str, encoding: str, base: str, rebase) -> FastFeed | None:
    number = root.get("version") or ""
    version = declared if declared.startswith("rss") else (
        _RSS_VERSIONS.get(number) or ("rss20" if number.startswith("2.") else None))
    channel = root.find("channel")
    if version is None or channel is None:
        return None
    title = channel.find("title")
    if (title is not None and len(title)) or channel.find(_DC + "title") is not None:
        return None  # markup in the channel title, or a dc:title feedparser takes over it
    return FastFeed(version, encoding, _title(_text(title)) if title is not None else "", "text/plain",
                    _rss_entries(channel.iterchildren("item"), rebase(base, channel), rebase, _RSS_READ, _RSS_IGNORED))


def _rdf_feed(root, encoding: str, base: str, rebase) -> FastFeed:
    """RSS 1.0: the channel first, then its items, image and text input, all children of the root."""
    children = [child for child in root if isinstance(child.tag, str)]
    if not children or children[0].tag != _RSS1 + "channel":
        raise NotCommon("RDF without a leading channel")
    titles = list(children[0].iter(_RSS1 + "title", _DC + "title", _ATOM + "title"))
    if len(titles) > 1 or (titles and (titles[0].tag != _RSS1 + "title" or titles[0].getparent() is not children[0]
                                       or len(titles[0]))):
        raise NotCommon("a channel title feedparser may read otherwise")
    items = []
    for child in children[1:]:
        if child.tag == _RSS1 + "item":
            items.append(child)
        elif child.tag not in (_RSS1 + "image", _RSS1 + "textinput") or any(
                node.tag not in _RDF_FURNITURE for node in child.iterdescendants()):
            raise NotCommon(f"{child.tag} in RDF")
    return FastFeed("rss10", encoding, _title(_text(titles[0])) if titles else "", "text/plain",
                    _rss_entries(items, base, rebase, _RDF_READ, _RDF_IGNORED))


def _read_root(root, url: str, encoding: str, rebase) -> FastFeed | None:
    declared = _declared_version(root)
    base = rebase(url, root)
    if root.tag == "rss":
        feed = _rss_feed(root, declared, encoding, base, rebase)
    elif root.tag == _RDF + "RDF" and declared == "rss10":
        feed = _rdf_feed(root, encoding, base, rebase)
    elif root.tag == _ATOM + "feed" and declared == "atom10":
        title_el = root.find(_ATOM + "title")
        title, title_type = _atom_title(title_el) if title_el is not None else ("", "text/plain")
        feed = FastFeed("atom10", encoding, title, title_type, _atom_entries(root, base, rebase))
    else:
        return None
    if feed is not None:
        _check_reads_alike(feed)
    return feed


def parse_common_feed(body: bytes, content_type: str | None, url: str) -> FastFeed | None:
    """The entries of a well-formed RSS / RDF / Atom document this module reads as feedparser does,
    or None when feedparser must read it."""
    encoding = _rfc3023_encoding(body, content_type)
    if encoding is None:
        return None
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None  # mislabelled charset: feedparser's fallbacks and the GBK recovery apply
    with_bases = "xml:base" in text
    if with_bases and has_other_base_attribute(text):
        return None
    utf8 = body if encoding in ("utf-8", "utf8") else text.encode("utf-8")
    try:
        named = doctype_version(text)
        root = etree.fromstring(utf8, _xml_parser())
        feed = _read_root(root, url, encoding, rebase if with_bases else _same_base)
    except (NotCommon, etree.XMLSyntaxError):
        return None
    if feed is not None and named:
        if not feed.version.startswith("rss"):
            return None  # an Atom feed named RSS 0.91 reads by RSS rules in feedparser
        feed.version = named
    return feed
