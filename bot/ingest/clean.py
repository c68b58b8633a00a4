"""Feed HTML to plain text, and the page furniture stripped from that text.

Everything here is pure (no I/O) and works on both English and Simplified Chinese. The
boilerplate stripper matters for correctness, not looks: numbers in related-article lists,
tickers and counters would otherwise reach a brief as if the article said them.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

__all__ = ["html_to_text", "strip_boilerplate"]

# --------------------------------------------------------------------------- HTML -> text

# Tags whose start and end mark a paragraph boundary.
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hgroup", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "ul", "body", "html",
})
# Tags whose content is never article text.
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object",
                        "canvas", "math", "select", "button"})

_PARA = "\x00"  # paragraph-break marker (NUL is removed from the input first), a blank line at the end

# The text is handed over as UTF-8 bytes with the encoding fixed, so a charset in a <meta> tag or
# an XML declaration inside the fragment is ignored, as it must be for text that is already decoded.
_PARSER = lxml_html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True,
                               default_doctype=False)


def _append_text(element, out: list[str]) -> None:
    """The text of `element`'s children, in document order, with block and line break marks.

    Recursion is safe: libxml2 caps the depth of the tree it builds (256)."""
    for child in element:
        tag = child.tag
        if tag not in _SKIP_TAGS:
            if tag == "br":
                out.append("\n")
            elif tag in _BLOCK_TAGS:
                out.append(_PARA)
            if child.text:
                out.append(child.text)
            if len(child):
                _append_text(child, out)
            if tag in _BLOCK_TAGS:
                out.append(_PARA)
        if child.tail:  # the text after a skipped element is still text
            out.append(child.tail)


# Inline space: every run of these characters becomes one " " (line breaks are kept). Besides " ":
_ODD_SPACE = "\t\r\f\v\u00a0" + "".join(map(chr, range(0x2000, 0x200C))) + "\u3000"  # ... U+2000-U+200B
_ODD_ASCII_SPACE = "\t\r\f\v"


def _collapse_inline_space(raw: str) -> str:
    """Each maximal run of inline space -> " ", like re.sub("[ " + _ODD_SPACE + "]+", " ", raw).

    With every odd space turned into " ", halving "  " collapses the runs; text is mostly single
    spaces, so this usually replaces nothing, where the regex would stop at every word gap."""
    for ch in _ODD_ASCII_SPACE if raw.isascii() else _ODD_SPACE:
        if ch in raw:
            raw = raw.replace(ch, " ")
    while "  " in raw:
        raw = raw.replace("  ", " ")
    return raw


def _paragraphs(raw: str) -> str:
    """Marked-up text -> paragraphs at _PARA marks, lines at "\\n", each line's inline space
    collapsed and stripped, empty lines and paragraphs dropped."""
    # Inline space includes neither "\n" nor _PARA, so collapsing it in the whole string at once
    # is the same as line by line.
    raw = _collapse_inline_space(raw)
    paragraphs = ["\n".join(filter(None, map(str.strip, block.split("\n")))) for block in raw.split(_PARA)]
    return "\n\n".join(filter(None, paragraphs))


def html_to_text(html: str) -> str:
    """HTML fragment or page -> plain text; block elements become paragraphs (blank-line separated).

    Entities are decoded; script, style and other non-text elements are dropped with their content;
    broken markup is read as a browser would (unclosed tags closed, stray end tags ignored)."""
    if not html or not isinstance(html, str):
        return ""
    # NUL is never text, and lone surrogates cannot be encoded: neither reaches the parser.
    data = html.replace("\x00", "").encode("utf-8", "ignore")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.ParserError:  # nothing the parser could read as a document
        return ""
    if root is None:
        return ""
    out = [root.text] if root.text else []
    _append_text(root, out)
    return _paragraphs("".join(out))


# --------------------------------------------------------------------------- boilerplate

_BOILERPLATE_HEADINGS = [
    "相关内容", "相关阅读", "相关文章", "相关新闻", "相关报道", "相关链接", "相关推荐", "热门资讯", "热门推荐",
    "热门文章", "热门新闻", "热点推荐", "推荐阅读", "猜你喜欢", "延伸阅读", "更多阅读", "更多新闻", "精彩推荐",
    "为您推荐", "大家都在看", "24小时热文", "排行榜", "热门排行", "阅读排行", "往期回顾", "往期推荐",
    "related articles", "related", "related stories", "related news", "related content", "related coverage",
    "read more", "read next", "more from", "more stories", "more news", "trending", "trending now",
    "most read", "most popular", "most viewed", "recommended", "recommended for you", "you may also like",
    "you might also like", "popular", "top stories", "latest news", "see also", "further reading",
]
_HEADING_RE = re.compile(
    r"^[\s#*>\-–—=|·•【\[〖《(（]*(?:" + "|".join(re.escape(h) for h in _BOILERPLATE_HEADINGS)
    + r")[\s:：】\]〗》)）>»›|*#\-–—]*$",
    re.IGNORECASE,
)
# "More from Reuters", "More on Tariffs": a short section label naming a source or topic.
_NAMED_HEADING_RE = re.compile(
    r"^[\s#*>\-–—]*(?:more (?:from|on|in|about)|also from|latest from|more stories from)\s+[\w .&'-]{1,30}?"
    r"[\s:：>»›]*$",
    re.IGNORECASE,
)

_ELLIPSIS_END_RE = re.compile(r"(?:\.\.\.|…|⋯)[\s\"'”’」』)）\]]*$")

_CURRENCIES = "美元|欧元|英镑|日元|人民币|离岸人民币|在岸人民币|澳元|加元|瑞郎|港元|纽元|韩元|卢布|美元指数"
_FX_LINE_RE = re.compile(rf"(?:{_CURRENCIES})兑(?:{_CURRENCIES}).{{0,12}}?(?:上涨|下跌|涨|跌|报|升|贬|收)")
_PCT_RE = re.compile(r"[+\-−▲▼↑↓]?\s?\d+(?:[.,]\d+)?\s?%")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)+|\d{2,}")
_STOCK_CODE_RE = re.compile(
    r"\b\d{6}(?:\.(?:SH|SZ|SS|BJ))?\b|\b\d{4,5}\.HK\b|[（(](?:[A-Z]{1,5}|\d{4,6})(?:\.[A-Z]{1,2})?[)）]"
    r"|\b[A-Z]{3}/[A-Z]{3}\b|\b(?:NYSE|NASDAQ|Nasdaq|SSE|SZSE|HKEX|ASX|TSX)\s*:\s*[A-Z]{1,5}\b"
    r"|指数|沪指|深成指|创业板指|恒指|道指|纳指|标普|Dow|S&P|FTSE|Nikkei|Hang Seng",
)
_SENTENCE_END_RE = re.compile(r"[。！？!?]|[.](?:\s|$)")

_CAPTION_RE = re.compile(
    r"[（(](?:资料图|资料图片|图片来源[^)）]*|图源[^)）]*|视觉中国|新华社[^)）]*摄|[^)）]{0,20}摄|"
    r"file photo|photo[^)]*|image[^)]*|credit[^)]*)[)）]\s*$"
    r"|^(?:图[：:]|图为|图片[：:]|图片来源[：:]|图源[：:]|photo:|image:|credit:|pictured:)"
    r"|(?:/\s*(?:reuters|afp|ap|getty images|bloomberg)|getty images|shutterstock)\s*$",
    re.IGNORECASE,
)

_DATE_TOKEN_RE = re.compile(
    r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
    r"|\d{1,2}\s*月\s*\d{1,2}\s*日"
    r"|\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s*\d{4}"
    r"|\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4}"
    r"|(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?"
    r"|星期[一二三四五六日天]|周[一二三四五六日]"
    r"|\b(?:utc|gmt|bst|edt|est|cst|pst|pdt|et|bjt)\b|[+-]\d{2}:?\d{2}",
    re.IGNORECASE,
)
_DATE_LABEL_RE = re.compile(
    r"发布时间|发布日期|发表时间|更新时间|更新|时间|日期|发布|published|updated|posted|last updated|on|at|"
    r"[：:|,，·\-–—/()（）\s]",
    re.IGNORECASE,
)

_BYLINE_RE = re.compile(
    r"^(?:原创|原创\s*[|｜]|责任编辑|编辑|作者|记者|来源|文\s*[/／|｜]|撰文|编审|审核|校对)[\s：:|｜]"
    r"|^(?:原创)\S{0,2}$|创始人"
    r"|^[Bb][Yy]\s+[A-Z][\w.'-]*(?:\s+(?:and\s+)?[A-Z][\w.'-]*){0,5}\s*(?:[,|·]\s*[\w .'-]{0,40})?$",
)

_COUNTER_WORDS = (
    r"分享到|分享|评论|点赞|赞|阅读|阅读量|收藏|转发|浏览|在看|关注|打印|字号|举报|"
    r"share(?:\s+this(?:\s+article|\s+story)?)?|comments?|likes?|views?|reads?|reposts?|shares?|"
    r"print|email|tweet|facebook|twitter|linkedin|whatsapp|微信|微博|朋友圈|qq空间|qq|豆瓣|复制链接|"
    r"save|follow|subscribe|大|中|小"
)
# The figure run and the space after it are possessive (++, *+): with plain + a run of n figure
# characters could be split between loop turns in 2^n ways, and a quote-table row that fails at its
# end ("600111 | 1.0850 | 864.8 | 403,71 | 72.8 HKD") would take minutes. No match needs such a
# split: every way of taking a run ends at the same place.
_COUNTER_LINE_RE = re.compile(
    rf"^(?:(?:{_COUNTER_WORDS})|[\d.,]++\s*+[万千kKmM+]?|[\s：:()（）\[\]|｜/·•,，])+$",
    re.IGNORECASE,
)


def _is_heading(line: str) -> bool:
    return len(line) <= 60 and bool(_HEADING_RE.match(line) or _NAMED_HEADING_RE.match(line))


def _is_ticker(line: str) -> bool:
    # Both kinds of quote line need a literal "兑" (FX) or "%": most lines are ruled out by that alone.
    if len(line) > 80 or ("%" not in line and "兑" not in line):
        return False
    if _FX_LINE_RE.search(line) and (len(line) <= 40 or not _SENTENCE_END_RE.search(line)):
        return True
    # Prose has sentence punctuation or clauses; quote boards are bare "name code price change".
    if _SENTENCE_END_RE.search(line) or "，" in line or ", " in line or "；" in line:
        return False
    pct = _PCT_RE.findall(line)
    numbers = _NUMBER_RE.findall(_PCT_RE.sub(" ", line))
    if not (pct and numbers):
        return False
    letters = sum(ch.isalpha() for ch in line)
    if _STOCK_CODE_RE.search(line) and letters <= 24:
        return True
    # A line that is nearly all figures ("23.45 +1.20 +5.4%") is a quote board, not prose.
    return letters <= 12


def _is_lone_datetime(line: str) -> bool:
    # The sentence-end test is the cheap one: it rules out prose before the date-token regexes run.
    if len(line) > 60 or _SENTENCE_END_RE.search(line) or not _DATE_TOKEN_RE.search(line):
        return False
    rest = _DATE_TOKEN_RE.sub(" ", line)
    rest = _DATE_LABEL_RE.sub("", rest)
    # A source name may share the line ("来源：某某网 2024-05-12 10:30"); allow a few characters.
    return len(rest) <= 8


def _is_byline(line: str) -> bool:
    if len(line) > 50 or line.endswith(("。", "！", "？")) or not _BYLINE_RE.search(line):
        return False
    # "某某资讯创始人 张三" is a byline; "某公司创始人张三表示，..." is reporting.
    return not ("，" in line or "表示" in line or "认为" in line or "说" in line)


def _is_counter(line: str) -> bool:
    return len(line) <= 60 and bool(_COUNTER_LINE_RE.match(line)) and any(not ch.isdigit() for ch in line)


def _is_caption(line: str) -> bool:
    return len(line) <= 120 and bool(_CAPTION_RE.search(line))


def _is_noise_line(line: str) -> bool:
    return bool(_ELLIPSIS_END_RE.search(line) or _is_caption(line) or _is_ticker(line)
                or _is_lone_datetime(line) or _is_byline(line) or _is_counter(line))


def strip_boilerplate(text: str) -> str:
    """Drop page furniture: related/trending tails, tickers, teasers, captions, datelines, bylines, counters.

    Works on lines (as produced by `html_to_text`); paragraph breaks are kept. Everything from a
    boilerplate heading on is dropped once some body text has been seen; a heading before any
    body (a sidebar rendered first) drops only its own block, up to the next blank line.
    """
    if not text:
        return ""
    out: list[str] = []
    body_seen = False
    skipping_block = False
    for raw_line in text.split("\n"):
        line = raw_line.strip()
        if not line:
            skipping_block = False
            if out and out[-1] != "":
                out.append("")
            continue
        if skipping_block:
            continue
        if _is_heading(line):
            if body_seen:
                break
            skipping_block = True
            continue
        if _is_noise_line(line):
            continue
        out.append(line)
        body_seen = True
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)
