"""The value of a numeral: Arabic digits, Chinese numerals ("三千五"), English words ("forty-five")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.analyse.numbers.lexicon import CN_BIG_UNITS, CN_DIGITS, CN_SMALL_UNITS, EN_SCALES, EN_SMALL, EN_TENS

_ZEROS = ("零", "〇")


@dataclass(slots=True)
class _CnReading:
    """A standard Chinese numeral read left to right: 三千五百万 is (3*1000 + 5*100) * 10_000."""

    total: int = 0  # whole 亿 and 万 groups read so far
    section: int = 0  # the group below 万 read so far
    number: int | None = None  # the digit waiting for its unit
    prev: str = ""

    def read(self, ch: str) -> bool:
        """Take one character; False when the string is not a numeral after all."""
        if ch in CN_DIGITS:
            ok = self._digit(ch)
        elif ch in CN_SMALL_UNITS:
            ok = self._small_unit(ch)
        elif ch in CN_BIG_UNITS:
            ok = self._big_unit(ch)
        else:
            ok = False
        self.prev = ch
        return ok

    def _digit(self, ch: str) -> bool:
        if self.number is not None and self.prev not in _ZEROS:
            return False  # two digits in a row: "五六" (five or six), "十四五" (a plan's name)
        self.number = CN_DIGITS[ch]
        return True

    def _small_unit(self, ch: str) -> bool:
        if self.number is None:
            if ch != "十" or self.prev not in ("", *_ZEROS) and self.prev not in CN_BIG_UNITS:
                return False
            self.number = 1  # "十五" = 15, "三万十" is odd but harmless
        self.section += self.number * CN_SMALL_UNITS[ch]
        self.number = None
        return True

    def _big_unit(self, ch: str) -> bool:
        if self.number is None and self.section == 0 and self.total == 0:
            return False
        if ch == "万":
            self.section = (self.section + (self.number or 0)) * 10_000
            self.total += self.section
        else:
            self.total = (self.total + self.section + (self.number or 0)) * 100_000_000
        self.section = 0
        self.number = None
        return True

    def value(self, s: str) -> int:
        """The value of `s`, all of which was read."""
        number = self.number
        if number is not None:
            # A digit right after a unit is the next place down: "三千五" = 3500, "一亿五" = 1.5亿.
            before = s[-2] if len(s) >= 2 else ""
            if before in CN_SMALL_UNITS and before != "十":
                number *= CN_SMALL_UNITS[before] // 10
            elif before in CN_BIG_UNITS:
                number *= CN_BIG_UNITS[before] // 10
        return self.total + self.section + (number or 0)


def parse_cn_integer(s: str) -> int | None:
    """Standard Chinese numeral -> int ("三千" 3000, "两百万" 2e6, "十五" 15, "三千五" 3500).

    Returns None for strings that are words rather than numerals ("万一", "十四五", "一一").
    """
    if not s or not (s[0] in CN_DIGITS or s[0] == "十"):
        return None
    reading = _CnReading()
    for ch in s:
        if not reading.read(ch):
            return None
    return reading.value(s)


def parse_cn_numeral(s: str) -> float | None:
    """Chinese numeral with an optional decimal part ("四点五" 4.5)."""
    whole, _, frac = s.partition("点")
    value = parse_cn_integer(whole)
    if value is None:
        return None
    if frac:
        if any(c not in CN_DIGITS for c in frac):
            return None
        return value + float("0." + "".join(str(CN_DIGITS[c]) for c in frac))
    return float(value)


_EN_WORD_SPLIT_RE = re.compile(r"[\s-]+")


def parse_en_words(s: str) -> int | None:
    """'forty-five' 45, 'two hundred and fifty' 250, 'a million' 1e6, 'three billion' 3e9."""
    tokens = [t for t in _EN_WORD_SPLIT_RE.split(s.lower()) if t and t != "and"]
    total = group = 0
    seen_any = False
    for t in tokens:
        if t == "a":
            group = 1
        elif t in EN_SMALL:
            group += EN_SMALL[t]
        elif t in EN_TENS:
            group += EN_TENS[t]
        elif t == "hundred":
            group = (group or 1) * 100
        elif t in EN_SCALES:
            total += (group or 1) * EN_SCALES[t]
            group = 0
        else:
            return None
        seen_any = True
    return total + group if seen_any else None


def trailing_zero_place(value: float) -> float:
    """Largest power of ten dividing an integer value: the precision of a spelled numeral."""
    if value <= 0 or value != int(value):
        return 1.0
    v = int(value)
    place = 1
    while v % 10 == 0:
        v //= 10
        place *= 10
    return float(place)


def parse_core(alt: str, text: str) -> tuple[float, float, bool] | None:
    """(value, precision, spelled) of a numeral found by scan.core_matches as alternative `alt`
    ("ar" Arabic digits, "cn" Chinese, "en" English words), or None when it is not a numeral."""
    if alt == "ar":
        digits = text.replace(",", "")
        decimals = len(digits.partition(".")[2])
        return float(digits), 10.0 ** -decimals, False
    if alt == "cn":
        value = parse_cn_numeral(text)
        if value is None:
            return None
        frac = text.partition("点")[2]
        precision = 10.0 ** -len(frac) if frac else trailing_zero_place(value)
        return value, precision, True
    value = parse_en_words(text)
    if value is None:
        return None
    return float(value), trailing_zero_place(value), True
