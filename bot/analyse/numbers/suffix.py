"""What follows a numeral: its magnitude ("million", "万"), currency ("美元", " US dollars"), price unit
("/吨", " per share") or unit ("%", "个百分点", "九成", " tonnes", "个月", " companies", "倍").

Each pattern comes with the characters a match of it can start with and, where it can start with
one whitespace character, the characters that can come after that one (read off the pattern;
(?i) letters also match the look-alikes in CASE_FOLD_ODDITIES). A pattern is tried only where
these allow: most numbers are followed by none of them.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

from bot.analyse.numbers.lexicon import (
    CASE_FOLD_ODDITIES,
    CN_MAGNITUDES,
    COUNT_NOUNS,
    COUNT_STOP,
    DURATION_UNITS,
    EN_MAGNITUDES,
    PER_NAMES,
    QUALIFIED_DOLLAR,
    QUANTITY_UNITS,
    WORD_CURRENCY,
    known,
)
from bot.analyse.numbers.number import RawNumber


def _ci(letters: str) -> frozenset[str]:
    """The characters (?i) matches for `letters` (and a few more: every look-alike, whichever letter it stands for)."""
    return frozenset(letters.lower() + letters.upper() + CASE_FOLD_ODDITIES)


_NONE: frozenset[str] = frozenset()
# Every character \s matches (str.isspace; none is above U+3000).
_SPACES = frozenset(filter(str.isspace, map(chr, range(0x3001))))


class _Gate(NamedTuple):
    first: frozenset[str]  # the characters a match can start with
    after_space: frozenset[str]  # ... or, after one whitespace character, continue with

    def allows(self, c: str, after: str) -> bool:
        return c in self.first or after in self.after_space


def _next(norm: str, pos: int) -> tuple[str, str]:
    """The character at `pos` and, when that is whitespace, the one after it ("" otherwise)."""
    c = norm[pos:pos + 1]
    return c, norm[pos + 1:pos + 2] if c.isspace() else ""


_APPROX_SUFFIX = r"(?:多|余)?"
_SPACE_RUN_RE = re.compile(r"\s+")

# --------------------------------------------------------------------------- magnitude

_CN_MAGNITUDE_RE = re.compile(_APPROX_SUFFIX + r"(?P<mag>万亿|千亿|百亿|十亿|亿|千万|百万|十万|万|千(?![克米瓦])|百(?!分))")
_CN_MAGNITUDE_FIRST = frozenset("多余万亿千百十")
_EN_MAGNITUDE_RE = re.compile(r"(?i:\s?(?P<mag>trillion|billion|million|thousand|bn|mn|tn)\b)")
_EN_MAGNITUDE = _Gate(_ci("tbm"), _ci("tbm"))
# "$5m", "2.7m tonnes": an attached m/k only counts when money or a unit makes it unambiguous.
_EN_SHORT_MAGNITUDE_RE = re.compile(r"(?P<mag>m|k)\b")


def _set_magnitude(raw: RawNumber, multiplier: float, end: int) -> int:
    raw.multiplier = multiplier
    raw.has_magnitude = True
    return end


def _read_short_magnitude(norm: str, alt: str, raw: RawNumber, pos: int) -> int:
    m = _EN_SHORT_MAGNITUDE_RE.match(norm, pos) if alt == "ar" else None
    if not m:
        return pos
    after = m.end()
    if raw.currency or _QUANTITY_RE.match(norm, after) or _EN_COUNT_RE.match(norm, after) \
            or _EN_CURRENCY_SUFFIX_RE.match(norm, after):
        return _set_magnitude(raw, EN_MAGNITUDES[m.group("mag")], after)
    return pos


def _read_magnitude(norm: str, alt: str, raw: RawNumber, pos: int) -> int:
    """Magnitude: Chinese and English numerals include theirs, except after 多/余 ("三十多万吨")."""
    c, after = _next(norm, pos)
    if alt == "en":
        # "two million" is inside the words; "five bn" is rare but harmless to accept.
        m = _EN_MAGNITUDE_RE.match(norm, pos) if _EN_MAGNITUDE.allows(c, after) else None
        word = m.group("mag").lower() if m else ""
        return _set_magnitude(raw, EN_MAGNITUDES[word], m.end()) if word in ("bn", "mn", "tn") else pos
    m = ((_CN_MAGNITUDE_RE.match(norm, pos) if c in _CN_MAGNITUDE_FIRST else None)
         or (_EN_MAGNITUDE_RE.match(norm, pos) if alt == "ar" and _EN_MAGNITUDE.allows(c, after) else None))
    # Case-insensitive matching also takes look-alikes ("mıllıon", dotless ı) with no entry here.
    multiplier = m and (CN_MAGNITUDES.get(m.group("mag")) or EN_MAGNITUDES.get(m.group("mag").lower()))
    if multiplier:
        return _set_magnitude(raw, multiplier, m.end())
    if c == "m" or c == "k":
        return _read_short_magnitude(norm, alt, raw, pos)
    return pos


# --------------------------------------------------------------------------- money

_CN_CURRENCY_SUFFIX_RE = re.compile(_APPROX_SUFFIX + r"(?P<cur>港元|港币|美元|欧元|日元|英镑|澳元|加元|人民币|元(?![素化旦首材正宇件器组]))")
_CN_CURRENCY_FIRST = frozenset("多余港美欧日英澳加人元")
_EN_CURRENCY_SUFFIX_RE = re.compile(
    r"\s(?i:(?P<qual>US|U\.S\.|Hong\s+Kong|HK|Australian|Canadian)\s+)?"
    r"(?i:(?P<cur>dollars?|yuan|renminbi|euros?|yen|USD|CNY|RMB|HKD|EUR|JPY|GBP)\b)"
)
_EN_CURRENCY_AFTER_SPACE = _ci("uhacdyrejg")  # US, HK, dollars, yuan, ...; it starts with whitespace

_PER_UNIT = (r"(?P<per>(?i:kilograms?|kilos?|kg|metric\s+tons?|tonnes?|tons?|t|shares?|ounces?|oz|lbs?|pounds?)\b"
             r"|公斤|千克|吨|股)")
_PER_RE = re.compile(r"\s?(?:/|(?i:per|a|an)\s+|每)\s?" + _PER_UNIT)
_PER = _Gate(frozenset("/每") | _ci("pa"), frozenset("/每") | _ci("pa"))
_METRIC_RE = re.compile(r"^metric\s+")


def _read_en_currency(norm: str, raw: RawNumber, pos: int) -> int:
    m = _EN_CURRENCY_SUFFIX_RE.match(norm, pos)
    if not m:
        return pos
    word = m.group("cur").lower()
    qual = _SPACE_RUN_RE.sub(" ", (m.group("qual") or "").lower())
    if not known(word, WORD_CURRENCY) or qual and not known(qual, QUALIFIED_DOLLAR):
        return pos
    if word.startswith("dollar") and qual:
        raw.currency = QUALIFIED_DOLLAR[qual]
    elif not (word.startswith("dollar") and raw.currency):  # "HK$5 dollars": the symbol is the more specific
        raw.currency = WORD_CURRENCY[word]
    return m.end()


def _read_currency(norm: str, raw: RawNumber, pos: int) -> int:
    """A currency after the number ("8000万港元", "5 US dollars"); one before it is already in `raw`."""
    c, after = _next(norm, pos)
    m = _CN_CURRENCY_SUFFIX_RE.match(norm, pos) if c in _CN_CURRENCY_FIRST else None
    if m:
        raw.currency = WORD_CURRENCY[m.group("cur")]
        return m.end()
    return _read_en_currency(norm, raw, pos) if after in _EN_CURRENCY_AFTER_SPACE else pos


def _read_price_unit(norm: str, raw: RawNumber, pos: int) -> int:
    """Money, optionally per a unit ("per kilogram", "/吨", "每股")."""
    raw.kind = "money"
    m = _PER_RE.match(norm, pos) if _PER.allows(*_next(norm, pos)) else None
    per = _METRIC_RE.sub("", m.group("per").lower()) if m else ""
    if known(per, PER_NAMES):
        raw.per = PER_NAMES[per]
        pos = m.end()
    raw.unit = raw.currency + ("/" + raw.per if raw.per else "")
    return pos


# --------------------------------------------------------------------------- units

_EN_COUNT_RE = re.compile(
    r"(?:\s+(?!(?:" + COUNT_STOP + r")\b)[A-Za-z][A-Za-z.'-]*){0,4}?\s+(?P<noun>(?i:" + COUNT_NOUNS + r"))\b"
)
_QUANTITY_RE = re.compile(
    _APPROX_SUFFIX
    + r"(?:[\s-]?(?P<en>(?i:metric\s+tons?|tonnes?|tons?|kilograms?|kilos?)\b|kt\b|t\b|kg\b)|(?P<cn>公吨|吨|公斤|千克))"
)


def _fixed(kind: str, unit: str) -> Callable[[re.Match, RawNumber], bool]:
    def apply(m: re.Match, raw: RawNumber) -> bool:
        raw.kind, raw.unit = kind, unit
        return True
    return apply


def _cheng(m: re.Match, raw: RawNumber) -> bool:
    """九成 = nine tenths = 90 %."""
    if raw.has_magnitude or raw.base > 10:
        return False
    raw.kind, raw.unit, raw.multiplier = "percent", "%", 10.0
    return True


def _quantity(m: re.Match, raw: RawNumber) -> bool:
    word = _SPACE_RUN_RE.sub(" ", (m.group("en") or m.group("cn")).lower())
    if not known(word, QUANTITY_UNITS):
        return False
    raw.kind, raw.unit = "quantity", QUANTITY_UNITS[word]
    if word == "kt":
        raw.multiplier *= 1000
    return True


def _duration(m: re.Match, raw: RawNumber) -> bool:
    word = m.group("en").lower().rstrip("s") if m.group("en") else m.group("cn")
    if not known(word, DURATION_UNITS):
        return False
    raw.kind, raw.unit = "duration", DURATION_UNITS[word]
    return True


class _UnitRule(NamedTuple):
    regex: re.Pattern
    gate: _Gate
    apply: Callable[[re.Match, RawNumber], bool]  # sets the kind and unit; False: not this unit after all


# Tried in order; the first that applies gives the unit.
_UNIT_RULES = (
    _UnitRule(re.compile(r"\s?(?:%|(?i:per\s?cent|percent|pct)\b)"),
              _Gate(frozenset("%") | _ci("p"), frozenset("%") | _ci("p")), _fixed("percent", "%")),
    _UnitRule(re.compile(r"\s?(?i:percentage[\s-]points?\b|ppts?\b|pp\b)|个?百分点"),
              _Gate(frozenset("个百") | _ci("p"), _ci("p")), _fixed("percent", "pp")),
    _UnitRule(re.compile(r"成(?!本|为|功|员|立|交|果|品|型|效|就|熟|分|都|长|年|绩|像|材|语|套|批|千|百|了|的|不)"),
              _Gate(frozenset("成"), _NONE), _cheng),
    _UnitRule(_QUANTITY_RE, _Gate(frozenset("多余-公吨千") | _ci("mtk"), _ci("mtk")), _quantity),
    _UnitRule(re.compile(r"(?:[\s-](?P<en>(?i:days?|weeks?|months?|years?|hours?|minutes?))\b)"
                         r"|" + _APPROX_SUFFIX + r"(?P<cn>个多月|个月|个星期|星期|天|周(?!年)|小时|分钟|年|日)"),
              _Gate(frozenset("多余-个星天周小年日分"), _ci("dwmyh")), _duration),
    _UnitRule(re.compile(_APPROX_SUFFIX + r"(?P<cl>种|项|家|个(?!月|多月|星期)|款|类|批|起|名|件|艘|座|宗|例|次|台|辆|人|位|条|份"
                                          r"|只|枚|架|户|国)"),
              _Gate(frozenset("多余种项家个款类批起名件艘座宗例次台辆人位条份只枚架户国"), _NONE), _fixed("count", "item")),
    _UnitRule(_EN_COUNT_RE, _Gate(_NONE, _ci("abcdefghijklmnopqrstuvwxyz") | _SPACES), _fixed("count", "item")),
    _UnitRule(re.compile(r"倍|(?i:-fold\b|\s?times\b)"), _Gate(frozenset("倍-") | _ci("t"), _ci("t")),
              _fixed("number", "x")),
)


def _read_unit(norm: str, raw: RawNumber, pos: int) -> int:
    c, after = _next(norm, pos)
    for rule in _UNIT_RULES:
        if c in rule.gate.first or after in rule.gate.after_space:
            m = rule.regex.match(norm, pos)
            if m and rule.apply(m, raw):
                return m.end()
    return pos


# Every character a suffix can start with (or whitespace).
_SUFFIX_FIRST = _CN_MAGNITUDE_FIRST.union(_EN_MAGNITUDE.first, "mk", _CN_CURRENCY_FIRST, _PER.first,
                                          *(rule.gate.first for rule in _UNIT_RULES))


def suffix_may_follow(norm: str, pos: int) -> bool:
    """Whether any suffix pattern can match at `pos`."""
    c = norm[pos:pos + 1]
    return c in _SUFFIX_FIRST or c.isspace()


def parse_suffix(norm: str, alt: str, raw: RawNumber, pos: int) -> int:
    """Read the magnitude and unit after a numeral of scan alternative `alt` ("ar", "cn", "en")
    ending at `pos` into `raw`; returns where the mention ends."""
    pos = _read_magnitude(norm, alt, raw, pos)
    pos = _read_currency(norm, raw, pos)
    if raw.currency:
        return _read_price_unit(norm, raw, pos)
    return _read_unit(norm, raw, pos)
