"""Feed HTML to plain text, text hygiene, and the page furniture stripped from that text.

Everything here is pure (no I/O) and works on both English and Simplified Chinese. The
boilerplate stripper matters for correctness, not looks: numbers in related-article lists,
tickers and counters would otherwise reach a brief as if the article said them. Hygiene matters
for safety: a feed's text reaches terminals and chat platforms, where a control sequence or a
bidi override is an instruction, not text.
"""

from __future__ import annotations

import re
import unicodedata

from lxml import etree

__all__ = ["clean_text", "headline_from_text", "html_to_text", "plain_title", "strip_boilerplate"]

# --------------------------------------------------------------------------- hygiene

# A whole escape sequence goes, not just its ESC: "[2J" left behind would be noise. CSI (ESC [ or
# C1 0x9B), OSC / DCS / APC / PM / SOS strings up to their terminator, and two-character escapes.
_ESCAPE_RE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]P^_X][^\x07\x1b\x9c]{0,512}(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
_SGR_RE = re.compile(r"\x1b\[[0-9;]*m")
# Line and paragraph separators of other conventions become "\n".
_LINE_BREAKS = str.maketrans({"\r": "\n", "\x0b": "\n", "\x0c": "\n", "\u2028": "\n", "\u2029": "\n"})
# C1 controls in decoded text are Windows-1252 bytes read as Latin-1 (nobody writes C1 controls as
# text): each becomes the character Windows-1252 means ("\x92" -> "’"); the five it leaves
# undefined are dropped.
_C1_AS_CP1252 = {b: bytes([b]).decode("cp1252", "ignore") or None for b in range(0x80, 0xA0)}
# Always removed: C0 controls but tab and newline, DEL, soft hyphen (it splits a keyword without
# showing), Mongolian vowel separator, zero-width space, bidi embeddings, overrides and isolates,
# word joiner and invisible operators, BOM / zero-width no-break space, interlinear annotation
# and object replacement marks, noncharacters U+FFFE/U+FFFF and lone surrogates.
_REMOVED = ((0x01, 0x08), (0x0E, 0x1F), (0x7F, 0x7F), (0xAD, 0xAD), (0x180E, 0x180E), (0x200B, 0x200B),
            (0x202A, 0x202E), (0x2060, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFC), (0xFFFE, 0xFFFF),
            (0xD800, 0xDFFF))
_TABLE = str.maketrans({**dict.fromkeys(cp for lo, hi in _REMOVED for cp in range(lo, hi + 1)), 0: None,
                        **_C1_AS_CP1252})
_TABLE_KEEPING_ESC = {**_TABLE, 0x1B: 0x1B}  # for text whose remaining ESCs start kept colour codes
# What the fast check looks for (NUL apart: `html_to_text` marks paragraphs with it).
_SUSPECT = ("".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in _REMOVED)
            + "\\r\\x0b\\x0c\\x80-\\x9f\\u061c\\u200c-\\u200f\\u2028\\u2029")
_SUSPECT_RE = re.compile(f"[\\x00{_SUSPECT}]")
_SUSPECT_BESIDES_NUL_RE = re.compile(f"[{_SUSPECT}]")
# Right-to-left letters: only text that has some needs the left-to-right / right-to-left marks.
_RTL_RE = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_DIRECTION_MARKS = str.maketrans(dict.fromkeys(map(ord, "\u061c\u200e\u200f")))
# Scripts that shape with ZWNJ/ZWJ between their letters: Hebrew to Sinhala (Arabic, Syriac, Indic),
# Myanmar, Khmer, Mongolian and Arabic presentation forms.
_JOINING = "\u0590-\u0dff\u1000-\u109f\u1780-\u18af\ufb1d-\ufdff\ufe70-\ufefc"
# Emoji and what continues an emoji sequence (variation selector 16, skin tones, tags).
_EMOJI = ("\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2bff\u3030\u303d\u3297\u3299\ufe0f"
          "\U0001f000-\U0001faff\U000e0020-\U000e007f")
_KEPT_JOINER_RE = re.compile(f"(?<=[{_JOINING}])[\u200c\u200d](?=[{_JOINING}])"
                             f"|(?<=[{_EMOJI}])\u200d(?=[{_EMOJI}])")
_JOINER_RE = re.compile("[\u200c\u200d]")


def _drop_stray_joiners(text: str) -> str:
    """ZWJ and ZWNJ only where they shape something: inside an emoji sequence, or between letters
    of a script that joins. Elsewhere (between CJK or Latin letters) they only hide a keyword."""
    kept = {m.start() for m in _KEPT_JOINER_RE.finditer(text)}
    return _JOINER_RE.sub(lambda m: m.group() if m.start() in kept else "", text)


def clean_text(text: str, *, keep_colour: bool = False) -> str:
    """`text` without control characters, escape sequences, bidi embeddings/overrides/isolates or
    stray invisible characters; "\\n" and tab stay, other line breaks become "\\n".

    Kept: variation selectors, ZWJ inside emoji sequences, joiners in scripts that need them, and
    direction marks in text with right-to-left letters. `keep_colour` keeps SGR colour codes (the
    console's own colouring, applied before this runs on its output)."""
    if not text or not _SUSPECT_RE.search(text):
        return text
    if "\x1b" in text or "\x9b" in text:
        text = _ESCAPE_RE.sub(lambda m: m.group() if keep_colour and _SGR_RE.fullmatch(m.group()) else "", text)
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS)
    text = text.translate(_TABLE_KEEPING_ESC if keep_colour else _TABLE)
    if not _RTL_RE.search(text):
        text = text.translate(_DIRECTION_MARKS)
    if "\u200c" in text or "\u200d" in text:
        text = _drop_stray_joiners(text)
    return text


def plain_title(value: str, kind: str | None) -> str:
    """A one-line field (a title) as a reader sees it: HTML is read as HTML (entities decoded once,
    tags dropped) and text declared plain stays as written ("Vector<int>", "</example>")."""
    if not value:
        return ""
    text = html_to_text(value) if kind and "html" in kind else clean_text(value)
    return " ".join(text.split())


# The end of a first sentence: CJK or "!?" punctuation, or a full stop after two lower-case letters
# or digits and before no lower-case word (so not the stops of "U.S.", "Mr." or "Inc. said").
_HEADLINE_END_RE = re.compile(r"[。！？]|[!?](?=\s|$)|(?<=[a-z0-9)\"'”’]{2})\.(?=\s*$|\s+[^a-z\s])")
_HEADLINE_WIDTH = 80  # columns; a CJK character takes two
_UNBREAKABLE = "\u200c\u200d"  # a cut before one would split what it joins


def headline_from_text(text: str, width: int = _HEADLINE_WIDTH) -> str:
    """A headline for an item that has none: the first sentence of its text, cut at a word (in CJK, a
    character) boundary with "…" when it is wider than `width` columns."""
    line = next((stripped for stripped in map(str.strip, text.split("\n")) if stripped), "")
    end = _HEADLINE_END_RE.search(line)
    sentence = line[: end.end()] if end else line
    sentence = sentence.rstrip("。.") if end and sentence[-1] in "。." else sentence
    columns = 0
    for i, ch in enumerate(sentence):
        columns += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if columns > width:
            break
    else:
        return sentence
    while i > 0 and (unicodedata.combining(sentence[i]) or sentence[i] in _UNBREAKABLE
                     or "\ufe00" <= sentence[i] <= "\ufe0f"):
        i -= 1  # never between a character and its combining mark, selector or joiner
    head = sentence[:i]
    # Back to the last space (Latin words are not cut) or CJK comma, unless that loses half the width.
    if sentence[i].isascii() and sentence[i].isalnum() and sentence[i - 1].isalnum():
        cut = head.rfind(" ")
    else:
        cut = max(head.rfind(mark) for mark in "，、；：")
    head = head[:cut] if cut > len(head) // 2 else head
    return head.rstrip(" ,;:，；：、-–—") + "…"


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
# ... except graphics and formulas when they are all the text there is (an entry that is one SVG
# with a title, or one MathML formula): read as feedparser reads them rather than lose the entry.
_SKIP_TAGS_BUT_FIGURES = _SKIP_TAGS - {"svg", "math"}

_PARA = "\x00"  # paragraph-break marker (NUL is removed from the input first), a blank line at the end

# The text is handed over as UTF-8 bytes with the encoding fixed, so a charset in a <meta> tag or
# an XML declaration inside the fragment is ignored, as it must be for text that is already decoded.
# lxml.etree's parser, not lxml.html's: the same parse, without a Python class lookup for each
# element (only tags, text and tails are read here, which plain elements have).
_PARSER = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, default_doctype=False)


def _append_text(element, out: list[str], skip: frozenset = _SKIP_TAGS) -> None:
    """The text of `element`'s children but those tagged in `skip`, in document order, with block
    and line break marks.

    Recursion is safe: libxml2 caps the depth of the tree it builds (256)."""
    # Each read of an element's text or tail makes a new string: each is read once.
    for child in element:
        tag = child.tag
        if tag not in skip:
            block = tag in _BLOCK_TAGS
            if block:
                out.append(_PARA)
            elif tag == "br":
                out.append("\n")
            text = child.text
            if text:
                out.append(text)
            if len(child):
                _append_text(child, out, skip)
            if block:
                out.append(_PARA)
        tail = child.tail
        if tail:  # the text after a skipped element is still text
            out.append(tail)


# Inline space: every run of these characters becomes one " " (line breaks are kept). Besides " ":
_ODD_SPACE = "\t\r\f\v\u00a0" + "".join(map(chr, range(0x2000, 0x200B))) + "\u3000"  # ... U+2000-U+200A
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
    # Most blocks (all the empty ones between two block tags) hold no line break: one strip does them.
    paragraphs = ["\n".join(filter(None, map(str.strip, block.split("\n")))) if "\n" in block else block.strip()
                  for block in raw.split(_PARA)]
    return "\n\n".join(filter(None, paragraphs))


def html_to_text(html: str) -> str:
    """HTML fragment or page -> plain text; block elements become paragraphs (blank-line separated).

    Entities are decoded (once), and control and stray invisible characters removed (`clean_text`);
    script, style and other non-text elements are dropped with their content;
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
    text = _text_of(root, _SKIP_TAGS)
    return text or _text_of(root, _SKIP_TAGS_BUT_FIGURES)


def _text_of(root, skip: frozenset) -> str:
    out = [root.text] if root.text else []
    _append_text(root, out, skip)
    raw = "".join(out)
    if _SUSPECT_BESIDES_NUL_RE.search(raw):  # entities decode to controls too ("&#27;")
        raw = _PARA.join(map(clean_text, raw.split(_PARA)))
    return _paragraphs(raw)


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
# "[…]" closes an excerpt of the entry's own article (WordPress writes it): content, not a teaser.
_EXCERPT_MARK_RE = re.compile(r"[\[［(（]\s*(?:\.\.\.|…|⋯)\s*[\]］)）]\s*$")
# A teaser is a cut headline or dek; a paragraph cut at its end is longer.
_TEASER_MAX = 100

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

# A caption starts with a label, or ends with a parenthesised credit or an agency's name.
_CAPTION_LABEL_RE = re.compile(r"(?:图[：:]|图为|图片[：:]|图片来源[：:]|图源[：:]|photo:|image:|credit:|pictured:)",
                               re.IGNORECASE)
_CAPTION_END_RE = re.compile(
    r"[（(](?:资料图|资料图片|图片来源[^)）]*|图源[^)）]*|视觉中国|新华社[^)）]*摄|[^)）]{0,20}摄|"
    r"file photo|photo[^)]*|image[^)]*|credit[^)]*)[)）]\s*$"
    r"|(?:/\s*(?:reuters|afp|ap|getty images|bloomberg)|getty images|shutterstock)\s*$",
    re.IGNORECASE,
)

_MONTH = (r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?")
# A date or a time: what makes a short line a dateline.
_DATE_TOKEN_RE = re.compile(
    r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
    r"|\d{1,2}\s*月\s*\d{1,2}\s*日"
    r"|\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s*\d{{4}})?"
    rf"|\b\d{{1,2}}\s+{_MONTH},?\s+\d{{4}}",
    re.IGNORECASE,
)
# What a dateline may carry besides: whole day and time-zone names only ("money" holds no "mon").
_DATE_EXTRA_RE = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)\b\.?"
    r"|星期[一二三四五六日天]|周[一二三四五六日]"
    r"|\b(?:utc|gmt|bst|edt|est|cst|pst|pdt|et|bjt)\b|[+-]\d{2}:?\d{2}",
    re.IGNORECASE,
)
_DATE_LABEL_RE = re.compile(
    r"发布时间|发布日期|发表时间|更新时间|更新|时间|日期|发布|\b(?:published|last updated|updated|posted|on|at)\b|"
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
    rest = _DATE_EXTRA_RE.sub(" ", _DATE_TOKEN_RE.sub(" ", line))
    rest = _DATE_LABEL_RE.sub("", rest)
    # A source name may share the line ("来源：某某网 2024-05-12 10:30"); allow a few characters.
    return len(rest) <= 8


def _is_byline(line: str) -> bool:
    if len(line) > 50 or line.endswith(("。", "！", "？")) or not _BYLINE_RE.search(line):
        return False
    # "某某资讯创始人 张三" is a byline; "某公司创始人张三表示，..." is reporting.
    return not ("，" in line or "表示" in line or "认为" in line or "说" in line)


_BARE_NUMBER_RE = re.compile(r"[\d.,\s]{1,12}")


def _is_counter(line: str) -> bool:
    # A bare number on its own line is a count (comments, views) that lost its label: never prose.
    if _BARE_NUMBER_RE.fullmatch(line):
        return True
    return len(line) <= 60 and bool(_COUNTER_LINE_RE.match(line)) and any(not ch.isdigit() for ch in line)


def _is_caption(line: str) -> bool:
    if len(line) > 120:
        return False
    if _CAPTION_LABEL_RE.match(line):
        return True
    # A caption's end is a ")" or a letter, before any space. Most lines end a sentence instead,
    # and a search of them (at every position, case-insensitive) could only fail.
    last = line.rstrip()[-1:]
    return (last in ")）" or last.isalpha()) and bool(_CAPTION_END_RE.search(line))


def _is_teaser(line: str) -> bool:
    """Could be a cut headline or dek of another article. Only a run of them after the body, with no
    body after them, is dropped: an entry's own text may be an excerpt ending in an ellipsis, and a
    line of the body may trail off ("..." in dialogue)."""
    return len(line) <= _TEASER_MAX and bool(_ELLIPSIS_END_RE.search(line)) and not _EXCERPT_MARK_RE.search(line)


def _is_noise_line(line: str) -> bool:
    return bool(_is_caption(line) or _is_ticker(line) or _is_lone_datetime(line) or _is_byline(line)
                or _is_counter(line))


def strip_boilerplate(text: str) -> str:
    """Drop page furniture: related/trending tails, tickers, teasers, captions, datelines, bylines, counters.

    Works on lines (as produced by `html_to_text`); paragraph breaks are kept. Everything from a
    boilerplate heading on is dropped once some body text has been seen; a heading before any
    body (a sidebar rendered first) drops only its own block, up to the next blank line. Text that
    would lose every line is kept whole: an entry that had text keeps it.
    """
    if not text:
        return ""
    stripped = _strip_lines(text)
    if stripped or not text.strip():
        return stripped
    return _squeeze_blank_lines("\n".join(map(str.strip, text.split("\n")))).strip()


_BLANK_LINES_RE = re.compile(r"\n{3,}")


def _squeeze_blank_lines(text: str) -> str:
    """Each run of blank lines -> one blank line. Most texts have no such run, and a substring test
    finds that sooner than the regex does."""
    return _BLANK_LINES_RE.sub("\n\n", text) if "\n\n\n" in text else text


def _strip_lines(text: str) -> str:
    out: list[str] = []
    teasers: list[int] = []  # where in `out` the possible teasers since the last body line are
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
        if body_seen and _is_teaser(line):
            teasers.append(len(out))
        else:
            teasers.clear()  # body follows them: they were body too
            body_seen = True
        out.append(line)
    for index in reversed(teasers):
        del out[index]
    return _squeeze_blank_lines("\n".join(out)).strip("\n")
