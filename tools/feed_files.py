"""Feed documents found in directories of test data, with the HTTP headers their tests serve them with.

feedparser's test files name their headers inside the leading XML comment, one per line:

    <!--
    Header:      Content-type: application/atom+xml
    Description: ...
    -->

and its tests serve a file whose name holds "http" as `text/xml` unless a Content-type line says
otherwise; every other file is read as a local file, with no headers. Go test files carry feeds
inline, as raw string literals; each literal that is a feed document is one document here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FeedFile", "feed_files"]

_HEADER_RE = re.compile(r"^Header:\s+([^:\r\n]+):(.*)$", re.MULTILINE)
_GO_RAW_STRING_RE = re.compile(r"`([^`]*)`")
_FEED_START_RE = re.compile(r"<(?:rss|feed|rdf:RDF|channel)[\s>]|\"version\"\s*:\s*\"https?://jsonfeed")
_NOT_FEEDS = (".py", ".pyc", ".md", ".txt", ".html-result")
_BASE_URL = "http://corpus.invalid/"
# How far into a file the header lines may be: they sit in the comment before the root element.
_HEADER_SPAN = 4096


@dataclass
class FeedFile:
    name: str  # path relative to the directory given, with "#n" for the n-th feed inside a Go file
    body: bytes
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # why the file could not be read at all

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def _head_text(body: bytes) -> str:
    """The start of the document as text, whatever its byte order mark, for finding header lines."""
    head = body[:_HEADER_SPAN]
    for bom, codec in ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
                       (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
                       (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le")):
        if head.startswith(bom):
            return head.decode(codec, "ignore")
    return head.decode("utf-8", "ignore")


def declared_headers(name: str, body: bytes) -> dict[str, str]:
    """The `Header: Name: value` lines of a test file, names lower-cased, as its tests serve it."""
    headers = {key.strip().lower(): value.strip() for key, value in _HEADER_RE.findall(_head_text(body))}
    if "http" in Path(name).name and "content-type" not in headers:
        headers["content-type"] = "text/xml"  # what feedparser's tests serve such a file as
    return headers


def _go_feeds(name: str, text: str) -> list[FeedFile]:
    feeds = []
    for number, match in enumerate(_GO_RAW_STRING_RE.finditer(text), 1):
        literal = match.group(1).strip()  # the tests indent their literals; the readers trim them
        if literal[:1] in ("<", "{") and _FEED_START_RE.search(literal):
            inner = f"{name}#{number}"
            feeds.append(FeedFile(inner, literal.encode("utf-8"), _BASE_URL + inner))
    return feeds


def _documents(root: Path, path: Path) -> list[FeedFile]:
    name = path.relative_to(root).as_posix()
    try:
        body = path.read_bytes()
    except OSError as exc:
        return [FeedFile(name, b"", _BASE_URL + name, error=f"cannot read the file: {exc.strerror or exc}")]
    if path.suffix == ".go":
        return _go_feeds(name, body.decode("utf-8", "replace"))
    headers = declared_headers(name, body)
    url = headers.get("content-location") or _BASE_URL + name
    return [FeedFile(name, body, url, headers)]


def feed_files(directory: str | os.PathLike) -> list[FeedFile]:
    """Every feed document under `directory`, in path order."""
    root = Path(directory)
    # A dangling link is listed too: it is reported as unreadable rather than passed over in silence.
    paths = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() or (p.is_symlink() and not p.exists()))
    base = root.parent if root.is_file() else root
    documents: list[FeedFile] = []
    for path in paths:
        if path.name.endswith(_NOT_FEEDS) or path.name.startswith("."):
            continue
        documents.extend(_documents(base, path))
    return documents
