"""Plain-text analysis shared by relevance matching, story matching and summarising: language
detection, sentence splitting, matching normalisation and link defanging.

Everything here is pure (no I/O) and works on both English and Simplified Chinese. Turning feed
HTML into this plain text is the ingest stage's job (bot.ingest.clean).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "detect_language",
    "split_sentences",
    "normalise_for_match",
    "defang_links",
]

# --------------------------------------------------------------------------- language

def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0xF900 <= code <= 0xFAFF)


# The same ranges as _is_cjk, and ASCII letters: counted by the regex engine, not a Python loop.
_CJK_CHAR_RE = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\uf900-\ufaff]")
_ASCII_LETTER_RE = re.compile("[A-Za-z]")


def detect_language(text: str) -> str:
    """"zh" when CJK ideographs make up a fair share of the letters, else "en"."""
    if not text:
        return "en"
    cjk = len(_CJK_CHAR_RE.findall(text))
    if not cjk:
        return "en"
    latin = len(_ASCII_LETTER_RE.findall(text))
    # One ideograph carries roughly a word; English words average ~5 letters, so weigh accordingly.
    return "zh" if cjk * 5 >= latin * 1 else "en"


# --------------------------------------------------------------------------- sentences

_ABBREVIATIONS = frozenset(a.lower() for a in (
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "no", "nos", "vs", "etc", "inc", "ltd", "co", "corp",
    "plc", "llc", "dept", "est", "fig", "gov", "gen", "sen", "rep", "rev", "hon", "lt", "col", "capt", "sgt",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "vol",
    "p", "pp", "op", "cf", "al", "mt", "ft", "bros", "e.g", "i.e", "u.s", "u.k", "u.n", "e.u", "u.s.a",
    "a.m", "p.m", "ph.d", "b.a", "m.a", "d.c", "n.y", "s.a", "n.v", "a.g", "bn", "mn", "tn",
))
# Capitalised words that start many news sentences; after "U.S." they signal a real sentence end.
_SENTENCE_STARTERS = frozenset((
    "the", "it", "this", "that", "these", "those", "he", "she", "they", "we", "i", "in", "on", "but",
    "and", "a", "an", "its", "their", "his", "her", "there", "meanwhile", "however", "china", "beijing",
    "officials", "analysts", "prices", "shares", "exports", "imports",
))

_CJK_TERMINATORS = "。！？；!?"
_CLOSERS = "\"'”’」』）)]】》"
_SENTENCE_MARK_RE = re.compile("[\n." + re.escape(_CJK_TERMINATORS) + "…⋯]")
# A letter or digit: the characters str.isalnum() accepts are \w's without the underscore.
_ALNUM_RE = re.compile(r"[^\W_]")


def _prev_token(text: str, end: int) -> str:
    """The word (letters, digits and inner dots) just before position `end`."""
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    return text[start:end]


def _next_word(text: str, pos: int) -> str:
    match = re.match(r"\s*[\"'“‘(\[]*([A-Za-z]+)", text[pos:])
    return match.group(1) if match else ""


_CJK_RUN = _CJK_TERMINATORS + "…⋯"


def _after_cjk_mark(text: str, i: int) -> tuple[int, bool]:
    """(where to look next, whether a sentence ends there) for the CJK terminator, "!", "?" or
    ellipsis character at `i`."""
    n = len(text)
    ch = text[i]
    j = i + 1
    while j < n and text[j] in _CJK_RUN:
        j += 1
    if ch in "!?" and j < n and not (text[j].isspace() or text[j] in _CLOSERS or _is_cjk(text[j])):
        return j, False  # "Yahoo!Finance"-like or "?!" glued to a word: not an end
    if ch in "…⋯" and j < n and not _is_cjk(text[j]) and text[j] not in _CLOSERS:
        # An English-style ellipsis mid-sentence ("prices… rose"): handled like "...".
        k = j
        while k < n and text[k] in " \t":
            k += 1
        if k < n and not (text[k].isupper() or text[k] in "\"“"):
            return j, False
    while j < n and text[j] in _CLOSERS:
        j += 1
    return j, True


def _after_dot(text: str, i: int) -> tuple[int, bool]:
    """(where to look next, whether a sentence ends there) for the run of dots starting at `i`."""
    n = len(text)
    j = i
    while j < n and text[j] == ".":
        j += 1
    is_ellipsis = j - i >= 3
    if not is_ellipsis and j < n and text[j].isdigit():
        return j, False  # decimal (1.5) or version
    k = j
    while k < n and text[k] in _CLOSERS:
        k += 1
    if k < n and not text[k].isspace() and not _is_cjk(text[k]):
        return j, False  # "example.com", "U.S" inner dot
    # Look at what follows the whitespace.
    m = k
    while m < n and text[m] in " \t":
        m += 1
    follower = text[m] if m < n else ""
    if follower and follower != "\n" and not (follower.isupper() or follower.isdigit()
                                              or follower in "\"'“‘([" or _is_cjk(follower)):
        return j, False  # lower-case continuation: "approx. three", "... and"
    if not is_ellipsis:
        token = _prev_token(text, i).lower()
        if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
            # "U.S. The ..." does end a sentence; "U.S. Treasury" / "Mr. Smith" do not.
            if not ("." in token and _next_word(text, k).lower() in _SENTENCE_STARTERS):
                return j, False
    return k, True


def split_sentences(text: str, lang: str | None = None) -> list[str]:
    """Split into sentences; each returned sentence is a verbatim (stripped) substring of `text`.

    Chinese: 。！？；and …… end a sentence (closing quotes stay with it). English: . ! ? followed by
    space and a capital/digit/quote, except after abbreviations (U.S., Mr., e.g., Inc.) and inside
    decimals (1.5). Line breaks always end a sentence (paragraphs, list items).
    """
    if not text:
        return []
    boundaries: list[int] = []  # positions where a sentence ends (exclusive)
    i = 0
    # Only these characters can end a sentence: jump from one to the next rather than step through prose.
    while (mark := _SENTENCE_MARK_RE.search(text, i)) is not None:
        i = mark.start()
        if text[i] == "\n":
            boundaries.append(i)
            i += 1
            continue
        i, ends = _after_dot(text, i) if text[i] == "." else _after_cjk_mark(text, i)
        if ends:
            boundaries.append(i)

    n = len(text)
    sentences: list[str] = []
    start = 0
    for end in boundaries + [n]:
        if end <= start:
            continue
        piece = text[start:end].strip()
        if _ALNUM_RE.search(piece):
            sentences.append(piece)
        start = end
    return sentences


# --------------------------------------------------------------------------- matching

_WS_RE = re.compile(r"\s+")


def normalise_for_match(text: str) -> str:
    """NFKC (full-width -> ASCII, compatibility forms), whitespace collapsed, casefolded."""
    if not text:
        return ""
    return _WS_RE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


# Chat clients turn URLs in message text into links (some even without <...>, some also inside
# [text](url)); a brief may only link to its sources, so other URLs are shown defanged.
_LINKISH_RE = re.compile(r"(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'()\[\]]+")


def defang_links(text: str) -> str:
    """`https://evil.example/x` -> `hxxps://evil[.]example/x`: readable, never clickable. Idempotent."""
    if not text or ("://" not in text and "www." not in text.lower()):
        return text or ""  # no link can start here: most labels and titles
    def defang(match: re.Match) -> str:
        url = match.group(0)
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "", url
        host, slash, path = rest.partition("/")
        scheme = re.sub(r"(?i)^(h)tt(ps?)$", r"\1xx\2", scheme) if scheme else ""
        return (scheme + sep if sep else "") + host.replace(".", "[.]") + slash + path

    return _LINKISH_RE.sub(defang, text or "")
