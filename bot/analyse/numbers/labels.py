"""What a key figure measures, in words: from the words around it in the article's language, and
from its kind and unit alone for the other language (never a translation)."""

from __future__ import annotations

import re

from bot.analyse.numbers.number import Number

# --------------------------------------------------------------------------- from kind and unit

_ZH_CURRENCY_NAMES = {"USD": "美元", "CNY": "人民币", "HKD": "港元", "EUR": "欧元", "JPY": "日元", "GBP": "英镑",
                      "AUD": "澳元", "CAD": "加元", "SGD": "新加坡元"}
_ZH_PER_NAMES = {"kg": "公斤", "t": "吨", "share": "股", "oz": "盎司", "lb": "磅"}
# (kind, unit) -> (English label, Chinese label); unit "" stands for any unit of that kind.
_FIXED_LABELS = {
    ("percent", "pp"): ("percentage points", "百分点"), ("percent", ""): ("percentage", "百分比"),
    ("count", ""): ("count", "数量"), ("date", ""): ("date", "日期"),
    ("number", "x"): ("multiple", "倍数"), ("number", ""): ("number", "数值"),
}
# kind -> (English label, Chinese label, Chinese names of its units), each label naming the unit.
_UNIT_LABELS = {
    "quantity": ("quantity ({})", "数量（{}）", {"t": "吨", "kg": "公斤"}),
    "duration": ("duration ({}s)", "时长（{}）",
                 {"day": "天", "week": "周", "month": "月", "year": "年", "hour": "小时", "minute": "分钟"}),
}


def _money_label(unit: str, zh: bool) -> str:
    cur, _, per = unit.partition("/")
    if zh:
        name = _ZH_CURRENCY_NAMES.get(cur, cur)
        return f"价格（{name}/{_ZH_PER_NAMES.get(per, per)}）" if per else f"金额（{name}）"
    return f"price ({cur}/{per})" if per else f"amount ({cur})"


def generic_label(number: Number, lang: str) -> str:
    """A label from kind and unit alone: used for the language the article is not in."""
    zh = lang == "zh"
    if number.kind == "money":
        return _money_label(number.unit, zh)
    if number.kind in _UNIT_LABELS:
        en_label, zh_label, zh_units = _UNIT_LABELS[number.kind]
        return zh_label.format(zh_units.get(number.unit, number.unit)) if zh else en_label.format(number.unit)
    labels = (_FIXED_LABELS.get((number.kind, number.unit)) or _FIXED_LABELS.get((number.kind, ""))
              or _FIXED_LABELS[("number", "x" if number.unit == "x" else "")])
    return labels[zh]


# --------------------------------------------------------------------------- English, from the words around

_EN_LABEL_STOP = {
    "the", "a", "an", "of", "by", "to", "at", "on", "in", "with", "and", "about", "nearly", "over", "more", "than",
    "some", "around", "up", "almost", "roughly", "approximately", "was", "were", "is", "are", "has", "had", "have",
    "been", "its", "their", "his", "her", "from", "for", "as", "be", "will", "would", "which", "that", "this",
    "it", "they", "some", "least", "just", "only", "estimated", "total", "totalling", "totaling", "reach",
    "reached", "another", "further", "or", "per", "cent", "percent", "while", "when", "after",
}
_EN_TEMPORAL = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "yesterday", "tomorrow", "year",
    "month", "week", "day", "last", "this", "next", "earlier", "later", "previous", "quarter", "so", "far",
}
_EN_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'&.-]*")
_EN_CLAUSE_END_RE = re.compile(r"[,;:()\[\]\"“”!?\n]|\.\s")
_EN_CLAUSE_START_RE = re.compile(r"[,;:()\[\]\"“”!?\n]|\.(?:\s|$)")
_WITH_DIGIT_RE = re.compile(r"\S*\d\S*")


def _clean_words(words: list[str]) -> list[str]:
    """Drop non-words and dates; trim function words from both ends."""
    words = [w.strip(".'") for w in words]
    words = [w for w in words if w and _EN_WORD_RE.fullmatch(w) and w.lower() not in _EN_TEMPORAL]
    while words and words[0].lower() in _EN_LABEL_STOP:
        words.pop(0)
    while words and words[-1].lower() in _EN_LABEL_STOP:
        words.pop()
    return words


def _of_what(after_words: list[str]) -> str:
    """"2,000 tonnes of smuggled antimony": the thing measured follows "of"."""
    if not after_words or after_words[0].lower() != "of":
        return ""
    taken = []
    for w in after_words[1:]:
        if w.lower() in _EN_LABEL_STOP or w.lower() in ("worth", "valued", "seized", "said") \
                or not _EN_WORD_RE.fullmatch(w) or len(taken) == 3:
            break
        taken.append(w)
    return " ".join(taken)


def _modified_noun(after_words: list[str]) -> str:
    """"a 45% tariff on magnets": the figure modifies the noun after it."""
    taken = []
    for w in after_words:
        if not _EN_WORD_RE.fullmatch(w) or len(taken) == 4:
            break
        if w.lower() in _EN_LABEL_STOP and (not taken or w.lower() not in ("on", "of", "for")):
            break
        taken.append(w)
    return " ".join(_clean_words(taken))


def _en_label(text: str, number: Number) -> str:
    before_clause = _EN_CLAUSE_END_RE.split(text[max(0, number.start - 120):number.start])[-1]
    after_words = _EN_CLAUSE_START_RE.split(text[number.end:number.end + 80])[0].split()
    of_what = _of_what(after_words)
    if of_what:
        return of_what
    # The words leading up to it, nearest stretch between other numbers first:
    # "Prices of NdPr oxide rose 12.5% in May to 452,000 yuan" -> "NdPr oxide rose".
    segments = _WITH_DIGIT_RE.split(before_clause)
    nearest = segments[-1].split()
    words_before = _clean_words(nearest[-4:])
    if words_before and not (nearest and nearest[-1].lower() in ("a", "an", "the")):
        return " ".join(words_before)
    noun = _modified_noun(after_words)
    if noun:
        return noun
    for segment in reversed(segments[:-1]):
        words = _clean_words(segment.split()[-4:])
        if words:
            return " ".join(words)
    return ""


# --------------------------------------------------------------------------- Chinese, from the words around

_CLAUSE_BREAK = ",;:()[]\"“”!?。，；：、（）！？\n"
_ZH_TRAILING_PARTICLES = ("达到", "高达", "多达", "超过", "约为", "不足", "仅为", "合计", "共计", "累计", "为", "达", "约",
                          "超", "逾", "近", "共", "计", "了", "是", "有", "的", "在", "于", "以", "仅", "已", "将", "再",
                          "和", "与", "及", "或", "把", "被", "其")
_ZH_LEADING_PARTICLES = ("的", "了", "是", "和", "与", "及", "其", "在", "对", "将", "把", "被", "为")
# Where a Chinese clause's subject phrase usually begins: after these, the rest names the figure.
_ZH_PHRASE_STARTS = ("以来", "全国", "其中", "据统计", "统计", "今年", "去年", "同期", "目前", "此前", "已经", "共计",
                     "累计", "合计", "共", "显示", "表示", "指出", "称")
_LAST_NUMBER_CHAR_RE = re.compile(r"[0-9０-９.,%％]")
_DIGIT_RE = re.compile(r"[0-9０-９]")
_ZH_WORD_END_RE = re.compile(r"[，。；：、,;:\s]")


def _clause_tail(s: str) -> str:
    """The end of `s` after its last clause break and its last number."""
    cut = max((s.rfind(c) for c in _CLAUSE_BREAK), default=-1)
    s = s[cut + 1:]
    m = _LAST_NUMBER_CHAR_RE.search(s[::-1])
    return s[len(s) - m.start():] if m else s


def _clause_head(s: str) -> str:
    """The start of `s` before its first clause break and its first digit."""
    cut = min((i for i in (s.find(c) for c in _CLAUSE_BREAK) if i >= 0), default=len(s))
    s = s[:cut]
    m = _DIGIT_RE.search(s)
    return s[:m.start()] if m else s


def _strip_trailing_particles(before: str) -> str:
    changed = True
    while changed and before:
        changed = False
        for p in _ZH_TRAILING_PARTICLES:
            if before.endswith(p):
                before = before[: -len(p)]
                changed = True
    return before


def _subject_phrase(before: str) -> str:
    """A long stretch from where its subject phrase begins (after "今年", "其中", ...)."""
    if len(before) <= 8:
        return before
    cuts = [before.rfind(p) + len(p) for p in _ZH_PHRASE_STARTS if p in before]
    cuts = [c for c in cuts if len(before) - c >= 2]
    return before[max(cuts):] if cuts else before


def _noun_after_de(after: str) -> str:
    """"34%的关税" / "8000万港元的罚款": the noun after 的 says what the figure is."""
    noun = after.lstrip("的")
    while noun and noun.startswith(_ZH_LEADING_PARTICLES):
        noun = noun[1:]
    return _ZH_WORD_END_RE.split(noun)[0][:8]


def _zh_label(text: str, number: Number, prev_end: int = 0, next_start: int | None = None) -> str:
    """Words of the same clause before the figure (after any earlier number), or the noun after 的."""
    next_start = len(text) if next_start is None else next_start
    before = _clause_tail(text[max(0, prev_end, number.start - 40):number.start]).strip()
    after = _clause_head(text[number.end:min(next_start, number.end + 30)]).strip()
    before = _subject_phrase(_strip_trailing_particles(before))
    if after.startswith("的") or not before:
        noun = _noun_after_de(after)
        if noun:
            return noun
    return before[-10:]


def context_label(text: str, number: Number, lang: str, neighbours: tuple[int, int]) -> str:
    """A label from the words around `number` in `text` ("" when there are none). `neighbours`:
    where the number before it ends and the one after it starts (Chinese context stops there)."""
    return _zh_label(text, number, *neighbours) if lang == "zh" else _en_label(text, number)
