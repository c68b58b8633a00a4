"""Plain-text helpers shared by feed parsing, relevance matching and summarising.

Everything here is pure (no I/O) and works on both English and Simplified Chinese.
The boilerplate stripper matters for correctness, not looks: numbers in related-article
lists, tickers and counters would otherwise reach a brief as if the article said them.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

__all__ = [
    "html_to_text",
    "strip_boilerplate",
    "detect_language",
    "split_sentences",
    "normalise_for_match",
]

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

_PARA = "\x00"  # internal paragraph-break marker, turned into a blank line at the end


# `_parts_fast` below mirrors these handlers token for token: change both together.
class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append(_PARA)

    def handle_startendtag(self, tag: str, attrs) -> None:
        # <br/>, <hr/>, and self-closed skip tags (<script/>) must not open a skip region.
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append(_PARA)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            if self.skip_depth:
                self.skip_depth -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(_PARA)

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def _parts_with_html_parser(html: str) -> list[str]:
    """The exact path: any input, tokenized by the stdlib HTMLParser."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient, but never let a pathological page break a poll
        pass
    return parser.parts


# --- The fast path. HTMLParser spends ~10 regex calls and a dozen method calls per tag; it was a
# third of the feed-parser worker's CPU. Feed-entry HTML is nearly always a simple, well-formed
# subset that one regex tokenizes. `_parts_fast` takes a document only if it is *entirely* made of
# the three tokens below, each of which HTMLParser (3.11, convert_charrefs=True, one feed() then
# close()) provably reads as the same single event; anything else returns None -> HTMLParser.
# tests/test_html_fastpath.py compares both paths on every corpus we have and on a grammar fuzz.
#
# 1. Text: a run of characters other than "<". HTMLParser passes the text between two pieces of
#    markup to handle_data as unescape(run), in one call (with convert_charrefs it looks only for
#    the next "<", never at "&"). The one exception is a final run with an "&" near its end
#    (a charref possibly cut in half): feed() holds it back and close() emits unescape(run) -
#    the same single call, so the same result.
# 2. Start tag: "<" name, attributes, optional whitespace, then ">" or "/>". Only ASCII whitespace
#    [ \t\n\r\f] is accepted in a tag: HTMLParser's tag name runs until one of those (or "/", ">",
#    NUL), so "<p\xa0x>" or "<p\vx>" has another name there, while its attribute patterns use \s
#    (which also matches \v, \xa0, ...). Each attribute needs whitespace before it (HTMLParser also
#    takes `a="x"b`; we don't). A value is "...", '...' (">" and "<" may be inside) or bare. A bare
#    value may contain "/" and must be followed by whitespace or ">": HTMLParser's bare value
#    ([^>\s]*) swallows a "/" before ">", so `<a href=x/>` is a *start* tag (href="x/") there and
#    here. "/>" after the name, a quoted value, a valueless attribute or whitespace is
#    handle_startendtag there (the tag's remainder after the attributes, stripped, is "/>") and here.
#    Such a tag is a strict subset of what locatestarttagend_tolerant and attrfind_tolerant consume
#    whole, so HTMLParser's tag ends at our ">" too.
# 3. End tag: "</" name, optional ASCII whitespace, ">": exactly what endtagfind matches, and the
#    first ">" after "</" (where parse_endtag ends the tag) is ours.
#
# Any other "<" (group 5) makes the whole document fall back: comments, <!DOCTYPE>, <![CDATA[,
# <?pi>, a "<" that is text (HTMLParser's handling of what follows it is subtle), unterminated or
# malformed tags, "</ p>", "<a b=>", "<a b==c>", ... So does a start tag of a raw-text element
# (_RAW_TEXT_TAGS): after <script> HTMLParser sees no tags until </script>; we do not model that.
_WS = r"[ \t\n\r\f]"
_ATTR = (
    _WS + r"+[a-zA-Z_:][-a-zA-Z0-9_:.]*"  # whitespace, name
    r"(?:" + _WS + r"*=" + _WS + r"*"  # optionally = and a value:
    r"""(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+(?=[ \t\n\r\f>]))"""  # "...", '...' or bare
    r")?"
)
_TOKEN_RE = re.compile(
    r"([^<]+)"  # 1: text
    r"|<([a-zA-Z][a-zA-Z0-9]*)(?:" + _ATTR + r")*" + _WS + r"*(/?)>"  # 2: start tag name, 3: "/" if <x/>
    r"|</([a-zA-Z][a-zA-Z0-9]*)" + _WS + r"*>"  # 4: end tag name
    # 5: any other "<". Tried last, and it always matches, so the matches tile the input: no
    # character can be skipped unseen.
    r"|(<)"
)
# Start tags after which HTMLParser stops seeing tags until the matching end tag: in 3.11 its
# CDATA_CONTENT_ELEMENTS, script and style. Newer CPython releases add more (iframe, xmp, ...,
# and title/textarea as RCDATA_CONTENT_ELEMENTS; plaintext, and noscript when scripting), so the
# set is read from whichever HTMLParser runs, plus those two to be safe.
_RAW_TEXT_TAGS = frozenset(HTMLParser.CDATA_CONTENT_ELEMENTS) | frozenset(
    getattr(HTMLParser, "RCDATA_CONTENT_ELEMENTS", ())) | {"plaintext", "noscript"}


def _parts_fast(html: str) -> list[str] | None:
    """`_parts_with_html_parser(html)` for the simple subset described above; None for anything else.

    Each token is handled as _TextExtractor's handlers do, line for line (inlined: method calls
    per token cost a fifth of the fast path's time)."""
    if "<!" in html or "<?" in html:
        # Comments, doctypes, CDATA sections, processing instructions: the commonest reasons to
        # decline, found without tokenizing the whole document first.
        return None
    parts: list[str] = []
    append = parts.append
    skip_depth = 0
    # findall's tuples are cheaper to take apart than match objects; a group that did not take
    # part is "". Every token is non-empty, so exactly one of the five groups is set.
    for data, tag, selfclosing, endtag, _other in _TOKEN_RE.findall(html):
        if data:  # handle_data
            if not skip_depth:
                append(unescape(data) if "&" in data else data)
        elif tag:
            tag = tag.lower()
            if tag in _RAW_TEXT_TAGS:
                return None
            if selfclosing:  # handle_startendtag
                if tag == "br":
                    append("\n")
                elif tag in _BLOCK_TAGS:
                    append(_PARA)
            elif tag in _SKIP_TAGS:  # handle_starttag
                skip_depth += 1
            elif tag == "br":
                append("\n")
            elif tag in _BLOCK_TAGS:
                append(_PARA)
        elif endtag:  # handle_endtag
            tag = endtag.lower()
            if tag in _SKIP_TAGS:
                if skip_depth:
                    skip_depth -= 1
            elif tag in _BLOCK_TAGS:
                append(_PARA)
        else:  # a "<" that is not one of our tags
            return None
    return parts


# Inline space: every run of these characters becomes one " " (line breaks are kept). Besides " ":
_ODD_SPACE = "\t\r\f\v\u00a0" + "".join(map(chr, range(0x2000, 0x200C))) + "\u3000"  # ... U+2000-U+200B
_ODD_ASCII_SPACE = "\t\r\f\v"


def _collapse_inline_space(raw: str) -> str:
    """Each maximal run of inline space -> " ", like re.sub("[ " + _ODD_SPACE + "]+", " ", raw).

    Turning every odd space into " " makes the runs exactly the runs of " ", which halving
    "  " then collapses. str.replace and `in` are far cheaper than that regex sub, which stops
    at every word gap; text is mostly single spaces, so usually nothing is replaced at all."""
    for ch in _ODD_ASCII_SPACE if raw.isascii() else _ODD_SPACE:
        if ch in raw:
            raw = raw.replace(ch, " ")
    while "  " in raw:
        raw = raw.replace("  ", " ")
    return raw


def _paragraphs(raw: str) -> str:
    """Joined parts (of either path) -> text: paragraphs at _PARA marks, lines at "\n", each line's
    inline space collapsed and stripped, empty lines and paragraphs dropped."""
    # Inline space includes neither "\n" nor _PARA, so collapsing it in the whole string at once
    # is the same as line by line.
    raw = _collapse_inline_space(raw)
    strip = str.strip
    paragraphs = [
        "\n".join(filter(None, map(strip, block.split("\n")))) if "\n" in block else block.strip()
        for block in raw.split(_PARA) if block
    ]
    return "\n\n".join(filter(None, paragraphs))


def html_to_text(html: str) -> str:
    """HTML fragment or page -> plain text; block elements become paragraphs (blank-line separated)."""
    if not html:
        return ""
    # (A non-str argument goes to HTMLParser too, which fails inside the try: "" as before.)
    parts = _parts_fast(html) if isinstance(html, str) else None
    if parts is None:
        parts = _parts_with_html_parser(html)
    return _paragraphs("".join(parts))


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
# end ("600111 | 1.0850 | 864.8 | 403,71 | 72.8 HKD") took minutes. No match needs such a split:
# every way of taking a run ends at the same place.
_COUNTER_LINE_RE = re.compile(
    rf"^(?:(?:{_COUNTER_WORDS})|[\d.,]++\s*+[万千kKmM+]?|[\s：:()（）\[\]|｜/·•,，])+$",
    re.IGNORECASE,
)


def _is_heading(line: str) -> bool:
    return len(line) <= 60 and bool(_HEADING_RE.match(line) or _NAMED_HEADING_RE.match(line))


def _is_ticker(line: str) -> bool:
    if len(line) > 80:
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
    if len(line) > 60 or not _DATE_TOKEN_RE.search(line):
        return False
    rest = _DATE_TOKEN_RE.sub(" ", line)
    rest = _DATE_LABEL_RE.sub("", rest)
    # A source name may share the line ("来源：某某网 2024-05-12 10:30"); allow a few characters.
    return len(rest) <= 8 and not _SENTENCE_END_RE.search(line)


def _is_byline(line: str) -> bool:
    if len(line) > 50 or line.endswith(("。", "！", "？")) or not _BYLINE_RE.search(line):
        return False
    # "某某资讯创始人 张三" is a byline; "某公司创始人张三表示，..." is reporting.
    return not ("，" in line or "表示" in line or "认为" in line or "说" in line)


def _is_counter(line: str) -> bool:
    return len(line) <= 60 and bool(_COUNTER_LINE_RE.match(line)) and any(not ch.isdigit() for ch in line)


def _is_caption(line: str) -> bool:
    return len(line) <= 120 and bool(_CAPTION_RE.search(line))


# Cheap necessary conditions for the checks above, so that ordinary prose skips their regexes.
# tests/test_boilerplate_fastpath.py checks each set against its regex over every code point.
_WHITESPACE = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())  # = re's \s; none above U+3000
_ELLIPSIS_TRAIL = _WHITESPACE + "\"'”’」』)）]"  # the class after the ellipsis in _ELLIPSIS_END_RE
_ELLIPSES = ("...", "…", "⋯")
# _CAPTION_RE ends in ")"/"）" or a credit word (reuters/afp/ap/images/bloomberg/shutterstock), or starts
# with 图/photo/pictured/image/credit; IGNORECASE also matches "ſ" (s), "K" (k), "İ" and "ı" (i).
_CAPTION_LAST = frozenset(")）sSſpPgGkK\u212a")
_CAPTION_FIRST = frozenset("图pPiI\u0130\u0131cC")
# Every character a _DATE_TOKEN_RE or _DATE_LABEL_RE match can contain (IGNORECASE letters included);
# any other character survives both subs in _is_lone_datetime, and more than 8 of them are too many.
_DATE_CHARS = r"\d\sA-Za-z\u0130\u0131\u017f\u212a年月日星期一二三四五六天周发布表时间更新:.+,\-–—/|：，·()（）"
_NINE_NON_DATE_CHARS_RE = re.compile(rf"(?:[{_DATE_CHARS}]*[^{_DATE_CHARS}]){{9}}")
# Every character a _COUNTER_LINE_RE match can contain (IGNORECASE): word letters, figures, separators.
_COUNTER_CHARS_RE = re.compile(
    r"[a-fhik-wy\d\s.,+万千中举享信关分到制博印友发号圈在复大字小微打报接收朋注浏点瓣看空藏览论评读豆赞转量链间阅"
    r"：:()（）\[\]|｜/·•，]*",
    re.IGNORECASE,
)
# _BYLINE_RE: "^" + one of these prefixes (原创 编辑 作者 ... "By"), or 创始人 anywhere (no IGNORECASE).
_BYLINE_FIRST = frozenset("原责编作记来文撰审校Bb")


def _is_noise_line(line: str) -> bool:
    """_ELLIPSIS_END_RE.search(line) or _is_ticker or _is_caption or _is_lone_datetime or _is_byline
    or _is_counter: the checks are pure, so they are run cheapest first, and each one only when a
    quick test (a length cap, a character it cannot match without) leaves it a chance."""
    # Same as _ELLIPSIS_END_RE.search: rstrip takes exactly the trailing closers (an ellipsis is none).
    if line.rstrip(_ELLIPSIS_TRAIL).endswith(_ELLIPSES):
        return True
    n = len(line)
    if n > 120:  # every other check has a length cap: caption 120, ticker 80, datetime/counter 60, byline 50
        return False
    # A caption match ends at the last non-space character ($ after \s*) or starts at the first (^).
    if (line.rstrip()[-1:] in _CAPTION_LAST or line[:1] in _CAPTION_FIRST) and _is_caption(line):
        return True
    if n > 80:
        return False
    # A ticker needs an FX line (…兑…) or a percentage (_PCT_RE has a literal "%").
    if ("%" in line or "兑" in line) and _is_ticker(line):
        return True
    if n > 60:
        return False
    # A lone date/time has no sentence end and at most 8 characters outside dates and labels: test
    # both before the costly date-token search and subs.
    if (not _SENTENCE_END_RE.search(line) and not _NINE_NON_DATE_CHARS_RE.match(line)
            and _is_lone_datetime(line)):
        return True
    if n <= 50 and (line[:1] in _BYLINE_FIRST or "创始人" in line) and _is_byline(line):
        return True
    # A counter line is made of counter characters only: one set test spares most lines the regex.
    return _COUNTER_CHARS_RE.fullmatch(line) is not None and _is_counter(line)


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
        if len(line) <= 60 and _is_heading(line):  # _is_heading's own cap, tested first to save the call
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


def _prev_token(text: str, end: int) -> str:
    """The word (letters, digits and inner dots) just before position `end`."""
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    return text[start:end]


def _next_word(text: str, pos: int) -> str:
    match = re.match(r"\s*[\"'“‘(\[]*([A-Za-z]+)", text[pos:])
    return match.group(1) if match else ""


def split_sentences(text: str, lang: str | None = None) -> list[str]:
    """Split into sentences; each returned sentence is a verbatim (stripped) substring of `text`.

    Chinese: 。！？；and …… end a sentence (closing quotes stay with it). English: . ! ? followed by
    space and a capital/digit/quote, except after abbreviations (U.S., Mr., e.g., Inc.) and inside
    decimals (1.5). Line breaks always end a sentence (paragraphs, list items).
    """
    if not text:
        return []
    boundaries: list[int] = []  # positions where a sentence ends (exclusive)
    n = len(text)
    i = 0
    while i < n:
        # Only these characters can end a sentence; jump to the next one rather than step through prose.
        mark = _SENTENCE_MARK_RE.search(text, i)
        if mark is None:
            break
        i = mark.start()
        ch = text[i]
        if ch == "\n":
            boundaries.append(i)
            i += 1
            continue
        if ch in _CJK_TERMINATORS or ch in "…⋯":
            j = i + 1
            while j < n and text[j] in _CJK_TERMINATORS + "…⋯":
                j += 1
            if ch in "!?" and j < n and not (text[j].isspace() or text[j] in _CLOSERS or _is_cjk(text[j])):
                i = j  # "Yahoo!Finance"-like or "?!" glued to a word: not an end
                continue
            if ch in "…⋯" and j < n and not _is_cjk(text[j]) and text[j] not in _CLOSERS:
                # An English-style ellipsis mid-sentence ("prices… rose"): handled like "...".
                k = j
                while k < n and text[k] in " \t":
                    k += 1
                if k < n and not (text[k].isupper() or text[k] in "\"“"):
                    i = j
                    continue
            while j < n and text[j] in _CLOSERS:
                j += 1
            boundaries.append(j)
            i = j
            continue
        if ch == ".":
            j = i
            while j < n and text[j] == ".":
                j += 1
            is_ellipsis = j - i >= 3
            if not is_ellipsis and j < n and text[j].isdigit():
                i = j  # decimal (1.5) or version
                continue
            k = j
            while k < n and text[k] in _CLOSERS:
                k += 1
            if k < n and not text[k].isspace() and not _is_cjk(text[k]):
                i = j  # "example.com", "U.S" inner dot
                continue
            # Look at what follows the whitespace.
            m = k
            while m < n and text[m] in " \t":
                m += 1
            follower = text[m] if m < n else ""
            if follower and follower != "\n" and not (follower.isupper() or follower.isdigit()
                                                      or follower in "\"'“‘([" or _is_cjk(follower)):
                i = j  # lower-case continuation: "approx. three", "... and"
                continue
            if not is_ellipsis:
                token = _prev_token(text, i).lower()
                if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                    # "U.S. The ..." does end a sentence; "U.S. Treasury" / "Mr. Smith" do not.
                    if not ("." in token and _next_word(text, k).lower() in _SENTENCE_STARTERS):
                        i = j
                        continue
            boundaries.append(k)
            i = k
            continue
        i += 1

    sentences: list[str] = []
    start = 0
    for end in boundaries + [n]:
        if end <= start:
            continue
        piece = text[start:end].strip()
        if piece and any(c.isalnum() for c in piece):
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


# Chat clients turn URLs in message text into links (Slack even without <...>, Discord also
# inside [text](url)); a brief may only link to its sources, so other URLs are shown defanged.
_LINKISH_RE = re.compile(r"(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'()\[\]]+")


def defang_links(text: str) -> str:
    """`https://evil.example/x` -> `hxxps://evil[.]example/x`: readable, never clickable. Idempotent."""
    def defang(match: re.Match) -> str:
        url = match.group(0)
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "", url
        host, slash, path = rest.partition("/")
        scheme = re.sub(r"(?i)^(h)tt(ps?)$", r"\1xx\2", scheme) if scheme else ""
        return (scheme + sep if sep else "") + host.replace(".", "[.]") + slash + path

    return _LINKISH_RE.sub(defang, text or "")
