"""Recovering the charset of a feed that feedparser could only read by falling back to a guess.

A document whose bytes do not fit its declared charset (GBK labelled UTF-8, a common habit of
Chinese publishers), or that names none and is not UTF-8, is read by feedparser as Windows-1252 or
ISO-8859-x: East Asian text becomes Latin mojibake. Re-reading it is worth it only when the bytes
clearly are one East Asian charset. GB18030 decodes almost any byte pairs, so Japanese and Korean
bytes also come out of it as plausible Chinese (which could then match a Chinese keyword): a
charset detector that weighs the text's language decides, and when it is not clear the document
is kept as decoded and the feed's problem says so.
"""

from __future__ import annotations

import io
import re
import xml.sax

__all__ = ["detect_east_asian", "recover_charset"]

# The charsets a re-read may pick, in Python's names; cp949 is the superset of EUC-KR that Korean
# sites send under that label.
_EAST_ASIAN = ("gb18030", "big5", "shift_jis", "euc_jp", "cp949")
_CHINESE = frozenset({"gb18030", "gbk", "gb2312", "big5", "big5hkscs"})
# feedparser's last resorts when the declared or assumed charset fails, and the labels under which
# its Windows-1252 reading is simply the declared one.
_FALLBACKS = frozenset({"windows-1252", "iso-8859-1", "iso-8859-2"})
_LATIN_1 = frozenset({"windows-1252", "cp1252", "iso-8859-1", "iso8859-1", "latin-1", "latin1"})
# How much of the text may read as noise (charset-normalizer's "chaos", 0-1) for a verdict to count.
_MAX_CHAOS = 0.1
# A verdict needs this many Han, kana or Hangul characters: a stray high byte or two read as
# halfwidth katakana is no evidence of Japanese.
_MIN_CHARACTERS = 4
_EAST_ASIAN_RE = re.compile(r"[\u3040-\u30ff\u3130-\u318f\u4e00-\u9fff\uac00-\ud7af]")
# Kana or Hangul in a Chinese reading means the bytes were Japanese or Korean after all.
_NOT_CHINESE_RE = re.compile(r"[\u3040-\u30ff\u3130-\u318f\uac00-\ud7af]")
_XML_ENCODING_RE = re.compile(rb'^\s*<\?xml[^>]*?encoding\s*=\s*["\']([A-Za-z0-9._:-]+)["\']')
_HTTP_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)


def _declared(body: bytes, headers: dict) -> str:
    """The charset the HTTP header or the XML declaration names (lower case), or ""."""
    match = _HTTP_CHARSET_RE.search(headers.get("content-type") or "")
    if match:
        return match.group(1).lower()
    match = _XML_ENCODING_RE.match(body[:1024])
    return match.group(1).decode("ascii").lower() if match else ""


def _needs_recovery(body: bytes, declared: str, result) -> bool:
    """feedparser fell back to a single-byte guess for bytes that are not UTF-8."""
    import feedparser

    used = (result.get("encoding") or "").lower()
    if used not in _FALLBACKS or body.isascii():
        return False
    try:
        body.decode("utf-8")
        return False  # UTF-8 bytes under a wrong label: feedparser's reading is the text
    except UnicodeDecodeError:
        pass
    exc = result.get("bozo_exception")
    if isinstance(exc, (feedparser.CharacterEncodingOverride, feedparser.CharacterEncodingUnknown)):
        return True
    # No label (XML's default is UTF-8), or a label that failed while the XML broke too (feedparser
    # then reports only the XML).
    return declared != used and not (declared in _LATIN_1 and used in _LATIN_1)


def detect_east_asian(body: bytes) -> str | None:
    """The East Asian charset these bytes clearly are (a Python codec name), or None."""
    from charset_normalizer import from_bytes

    best = from_bytes(body, cp_isolation=list(_EAST_ASIAN)).best()
    if best is None or best.chaos > _MAX_CHAOS:
        return None
    encoding, text = best.encoding.lower(), str(best)
    if len(_EAST_ASIAN_RE.findall(text)) < _MIN_CHARACTERS:
        return None
    if encoding in _CHINESE and (best.language != "Chinese" or _NOT_CHINESE_RE.search(text)):
        return None
    return encoding


def _label(declared: str) -> str:
    return f"document declared as {declared}" if declared else "document with no charset declared"


def _flagged(result, message: str):
    """`result` with a CharacterEncodingOverride saying `message` as its problem, unless its XML is
    broken: that problem is the graver one, and it decides whether an empty reading is a failure."""
    import feedparser

    if not isinstance(result.get("bozo_exception"), xml.sax.SAXException):
        result["bozo"] = 1
        result["bozo_exception"] = feedparser.CharacterEncodingOverride(message)
    return result


def recover_charset(body: bytes, headers: dict, result):
    """feedparser's `result`, or the document re-read in the East Asian charset its bytes clearly are.

    Either way a recovered or doubtful reading is flagged as the feed's problem."""
    import feedparser

    declared = _declared(body, headers)
    if not _needs_recovery(body, declared, result):
        return result
    used = result.get("encoding") or "?"
    encoding = detect_east_asian(body)
    if encoding is not None:
        retry = feedparser.parse(io.BytesIO(body), resolve_relative_uris=False, response_headers={
            **headers, "content-type": f"application/xml; charset={encoding}"})
        if retry.get("entries") or not result.get("entries"):
            return _flagged(retry, f"{_label(declared)} is {encoding}: decoded as {encoding}")
    return _flagged(result, f"{_label(declared)} is not {declared or 'UTF-8'}, nor clearly an East Asian "
                            f"charset: kept as decoded ({used})")
