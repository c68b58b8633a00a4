"""Getting an article ready for the model: full text for feed stubs, and a token budget.

Feeds often carry only a one-line description; a brief written from that would be thin and its
numbers unverifiable, so the page is fetched and its main text extracted. Page furniture
(related-article lists, tickers, comments) carries numbers that are *not* the story's, so it
must never reach the model or the grounding check.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import hashlib
import logging
import math
import os
import re
import tempfile
from functools import lru_cache

from bot.analyse.text import split_sentences
from bot.ingest.clean import strip_boilerplate
from bot.analyse.numbers import find_numbers
from bot.summarise import Article

log = logging.getLogger("briefbot.article")

# --------------------------------------------------------------------------- fetching stubs

_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_CT_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
# GB2312 and GBK pages routinely contain characters only GB18030 (their superset) decodes.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030"}


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    name = _CHARSET_ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str | None) -> str:
    """Bytes of a page -> text: BOM, then HTTP charset, then <meta charset>, then UTF-8, then GB18030."""
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    declared = None
    if content_type:
        match = _CT_CHARSET_RE.search(content_type)
        declared = _known_codec(match.group(1)) if match else None
    if declared is None:
        match = _META_CHARSET_RE.search(body[:4096])
        declared = _known_codec(match.group(1).decode("ascii", "ignore")) if match else None
    if declared:
        return body.decode(declared, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("gb18030", errors="replace")


def extract_main_text(html: str, url: str | None = None) -> str:
    """Main article text of a page, without comments, related lists, tables or tickers ('' if none)."""
    import trafilatura

    text = trafilatura.extract(
        html,
        url=url,
        favor_precision=True,  # a missed paragraph costs less than a foreign number in a brief
        include_comments=False,
        include_tables=False,  # market-data tables are tickers
        include_links=False,
        include_images=False,
        deduplicate=True,
    )
    return strip_boilerplate(text or "").strip()


async def enrich_article(article: Article, fetcher, min_chars: int) -> Article:
    """Fetch and extract the full text when the feed gave only a stub; on any failure, unchanged."""
    if len(article.text.strip()) >= min_chars or not article.url:
        return article
    try:
        result = await fetcher.fetch_page(article.url)
        if getattr(result, "status", None) != "ok" or not result.body:
            log.info("article %s: page fetch failed (%s), keeping the feed text",
                     article.url, getattr(result, "error", None) or getattr(result, "status", "?"))
            return article
        html = decode_html(result.body, result.content_type)
        text = await asyncio.to_thread(extract_main_text, html, article.url)
    except Exception as exc:  # an unusual page must never break a poll
        log.warning("article %s: could not extract the page text: %s", article.url, exc)
        return article
    if len(text) <= len(article.text.strip()):
        log.info("article %s: page gave no more text than the feed, keeping the feed text", article.url)
        return article
    return dataclasses.replace(article, text=text)


# --------------------------------------------------------------------------- token budget

_TIKTOKEN_ENCODINGS = ("o200k_base", "cl100k_base")
_TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def _tiktoken_file_cached(name: str) -> bool:
    """Whether tiktoken would load `name` from its local cache (mirrors tiktoken.load.read_file_cached).

    tiktoken downloads BPE files on first use; briefbot must never download at run time, so the
    encoding is only used when that file is already on disk.
    """
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    key = hashlib.sha1(_TIKTOKEN_URL.format(name=name).encode()).hexdigest()
    return os.path.exists(os.path.join(cache_dir, key))


@lru_cache(maxsize=1)
def offline_encoding():
    """A tiktoken encoding if one is available without network access, else None."""
    try:
        import tiktoken
    except ImportError:
        return None
    for name in _TIKTOKEN_ENCODINGS:
        if not _tiktoken_file_cached(name):
            continue
        try:
            return tiktoken.get_encoding(name)
        except Exception as exc:  # corrupt cache file, etc.
            log.debug("tiktoken encoding %s unavailable: %s", name, exc)
    return None


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x3000 <= code <= 0x303F
            or 0xFF00 <= code <= 0xFFEF or 0x20000 <= code <= 0x2FA1F or 0xF900 <= code <= 0xFAFF)


def _char_cost(ch: str) -> float:
    # Character budget: CJK is about one token per character, other scripts about four characters.
    return 1.0 if _is_cjk(ch) else 0.25


def count_tokens(text: str) -> int:
    """Tokens in `text`: exact with an offline tiktoken encoding, estimated otherwise."""
    if not text:
        return 0
    enc = offline_encoding()
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))
    cjk = sum(1 for ch in text if _is_cjk(ch))
    return cjk + math.ceil((len(text) - cjk) / 4)


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    if max_tokens <= 0:
        return ""
    enc = offline_encoding()
    if enc is not None:
        tokens = enc.encode(text, disallowed_special=())
        return text if len(tokens) <= max_tokens else enc.decode(tokens[:max_tokens])
    used = 0.0
    for i, ch in enumerate(text):
        used += _char_cost(ch)
        if used > max_tokens:
            return text[:i]
    return text


# How much of the budget the lead may take, and how many sentences count as the lead.
LEAD_SHARE = 0.5
LEAD_SENTENCES = 3


def budget_text(text: str, max_tokens: int) -> str:
    """Cap `text` at about `max_tokens`, keeping the lead and the sentences that carry figures.

    Sentences are kept verbatim and in article order, so a figure the model copies from the
    capped text still stands in the full article.
    """
    if count_tokens(text) <= max_tokens:
        return text
    sentences = split_sentences(text)
    if not sentences:
        return truncate_to_tokens(text, max_tokens)
    spans: list[tuple[int, int]] = []
    pos = 0
    for sentence in sentences:
        start = text.find(sentence, pos)
        if start < 0:  # split_sentences promises verbatim substrings; be safe anyway
            start = pos
        spans.append((start, start + len(sentence)))
        pos = start + len(sentence)
    costs = [count_tokens(s) + 1 for s in sentences]  # +1: the separator
    chosen: set[int] = set()
    used = 0

    def take(i: int, limit: int) -> bool:
        nonlocal used
        if i in chosen or used + costs[i] > limit:
            return False
        chosen.add(i)
        used += costs[i]
        return True

    if costs[0] > max_tokens:
        return truncate_to_tokens(sentences[0], max_tokens)
    take(0, max_tokens)
    for i in range(1, min(LEAD_SENTENCES, len(sentences))):
        if not take(i, int(max_tokens * LEAD_SHARE)):
            break
    for i, sentence in enumerate(sentences):
        if i not in chosen and find_numbers(sentence):
            take(i, max_tokens)
    for i in range(len(sentences)):
        take(i, max_tokens)

    out: list[str] = []
    previous: int | None = None
    for i in sorted(chosen):
        if previous is not None:
            # Adjacent sentences keep their original spacing; a gap becomes a line break.
            out.append(text[spans[previous][1]:spans[i][0]] if i == previous + 1 else "\n")
        out.append(sentences[i])
        previous = i
    return "".join(out)
