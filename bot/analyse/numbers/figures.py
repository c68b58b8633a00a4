"""Numbers in English and Chinese news text: finding them, normalising them, picking key figures.

`find_numbers` is the single parser behind key figures *and* the grounding guard, so it errs
on the side of recognising a mention (and its unit) rather than missing it: a number the
parser cannot see is a number the guard cannot check.

Normalisation (value, unit) is what lets "HK$80 million" in an English summary stand for
"8000万港元" in a Chinese article. Signs are not parsed: prose carries direction in words
("fell 3%", "下跌3%"), and the guard compares magnitudes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from bot.models import Figure

__all__ = ["Number", "find_numbers", "extract_figures", "values_match", "supports", "generic_label", "fold_width",
           "date_parts", "KINDS"]

KINDS = ("percent", "money", "quantity", "duration", "count", "date", "number")


@dataclass(frozen=True)
class Number:
    """One numeric mention. `text` is `source[start:end]` verbatim.

    Dates have unit "date" and value year*10000 + month*100 + day, with 0 for a part the text
    does not give ("June 9" -> 609, "2025" -> 20250000); see `date_parts`.
    """

    value: float
    unit: str
    kind: str
    text: str
    start: int
    end: int
    # Place value of the last digit the text gives, in the units of `value`: "18.4 billion" -> 1e8,
    # "三千" -> 1000, "45%" -> 1. It bounds how far a rounded restatement may differ.
    precision: float = 1.0
    # Written without Arabic digits ("forty-five", "九成", "three months").
    spelled: bool = False


def date_parts(value: float) -> tuple[int, int, int]:
    """(year, month, day) of a date Number's value; 0 where the text gave no such part."""
    v = int(round(value))
    return v // 10000, (v // 100) % 100, v % 100


# --------------------------------------------------------------------------- width folding

class _FoldTable(dict):
    """str.translate table: each non-ASCII character to its NFKC form when that is one character.

    Filled lazily (a news text uses few distinct characters), so folding runs at C speed."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if ch.isascii() or ch == "，":
            folded = ch  # the full-width comma depends on its neighbours: see fold_width
        else:
            folded = unicodedata.normalize("NFKC", ch)
            if len(folded) != 1:
                folded = ch
        self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()
_FULLWIDTH_THOUSANDS_RE = re.compile("(?<=[０-９])，(?=[０-９])")
_FULLWIDTH_THOUSANDS_NEED_RE = re.compile("[０-９]，[０-９]")  # what the above needs, found faster
# Characters _FOLD_TABLE maps to themselves: ASCII and the full-width comma (by its definition),
# the CJK Unified Ideographs (no decomposition mappings) and common CJK punctuation (checked here).
_SELF_FOLDING = r"\x00-\x7f\u4e00-\u9fff，" + "".join(c for c in "。、“”‘’《》「」【】—…·" if _FOLD_TABLE[ord(c)] == c)
_MAY_FOLD_RE = re.compile(f"[^{_SELF_FOLDING}]")


def fold_width(text: str) -> str:
    """Full-width/compatibility forms -> ASCII, one character for one, so offsets stay valid.

    The full-width comma is Chinese punctuation ("5种，12家") unless it sits between
    full-width digits ("３，０００"), where it is a thousands separator.
    """
    if text.isascii():
        return text
    if "，" in text and _FULLWIDTH_THOUSANDS_NEED_RE.search(text):
        # Decided on the original neighbours, before they are folded themselves.
        text = _FULLWIDTH_THOUSANDS_RE.sub(",", text)
    # text.translate(_FOLD_TABLE), without a table lookup for every character (a third of the
    # cost of find_numbers on Chinese text): each distinct character that may fold, replaced
    # where it folds. What it folds to folds to itself, so no replacement touches another's.
    for ch in set(_MAY_FOLD_RE.findall(text)):
        folded = _FOLD_TABLE[ord(ch)]
        if folded != ch:
            text = text.replace(ch, folded)
    return text


# --------------------------------------------------------------------------- numerals

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}


def _parse_cn_integer(s: str) -> int | None:
    """Standard Chinese numeral -> int ("三千" 3000, "两百万" 2e6, "十五" 15, "三千五" 3500).

    Returns None for strings that are words rather than numerals ("万一", "十四五", "一一").
    """
    if not s or not (s[0] in _CN_DIGITS or s[0] == "十"):
        return None
    total = section = 0
    number: int | None = None
    prev = ""
    last_unit = 0
    for ch in s:
        if ch in _CN_DIGITS:
            if number is not None and prev not in ("零", "〇"):
                return None  # two digits in a row: "五六" (five or six), "十四五" (a plan's name)
            number = _CN_DIGITS[ch]
            last_unit = 0
        elif ch in _CN_SMALL_UNITS:
            unit = _CN_SMALL_UNITS[ch]
            if number is None:
                if ch != "十" or prev not in ("", "零", "〇") and prev not in _CN_BIG_UNITS:
                    return None
                number = 1  # "十五" = 15, "三万十" is odd but harmless
            section += number * unit
            number = None
            last_unit = unit
        elif ch in _CN_BIG_UNITS:
            if number is None and section == 0 and total == 0:
                return None
            if ch == "万":
                section = (section + (number or 0)) * 10_000
                total += section
            else:
                total = (total + section + (number or 0)) * 100_000_000
            section = 0
            number = None
            last_unit = _CN_BIG_UNITS[ch]
        else:
            return None
        prev = ch
    if number is not None and prev in _CN_DIGITS and last_unit == 0:
        # A digit right after a unit is the next place down: "三千五" = 3500, "一亿五" = 1.5亿.
        before = s[-2] if len(s) >= 2 else ""
        if before in _CN_SMALL_UNITS and before != "十":
            number *= _CN_SMALL_UNITS[before] // 10
        elif before in _CN_BIG_UNITS:
            number *= _CN_BIG_UNITS[before] // 10
    return total + section + (number or 0)


def _parse_cn_numeral(s: str) -> float | None:
    """Chinese numeral with an optional decimal part ("四点五" 4.5)."""
    whole, _, frac = s.partition("点")
    value = _parse_cn_integer(whole)
    if value is None:
        return None
    if frac:
        if any(c not in _CN_DIGITS for c in frac):
            return None
        return value + float("0." + "".join(str(_CN_DIGITS[c]) for c in frac))
    return float(value)


_EN_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_EN_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_EN_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


_EN_WORD_SPLIT_RE = re.compile(r"[\s-]+")


def _parse_en_words(s: str) -> int | None:
    """'forty-five' 45, 'two hundred and fifty' 250, 'a million' 1e6, 'three billion' 3e9."""
    tokens = [t for t in _EN_WORD_SPLIT_RE.split(s.lower()) if t and t != "and"]
    total = group = 0
    seen_any = False
    for t in tokens:
        if t == "a":
            group = 1
        elif t in _EN_SMALL:
            group += _EN_SMALL[t]
        elif t in _EN_TENS:
            group += _EN_TENS[t]
        elif t == "hundred":
            group = (group or 1) * 100
        elif t in _EN_SCALES:
            total += (group or 1) * _EN_SCALES[t]
            group = 0
        else:
            return None
        seen_any = True
    return total + group if seen_any else None


def _trailing_zero_place(value: float) -> float:
    """Largest power of ten dividing an integer value: the precision of a spelled numeral."""
    if value <= 0 or value != int(value):
        return 1.0
    v = int(value)
    place = 1
    while v % 10 == 0:
        v //= 10
        place *= 10
    return float(place)


# --------------------------------------------------------------------------- patterns

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
# Capitalised only: "may" is a verb, "march" a noun.
_MON = "(?:" + "|".join(sorted((m.capitalize() for m in _MONTHS), key=len, reverse=True)) + r")\.?"
_CN_SMALL_NUM = "[一二三四五六七八九十]{1,3}"

_DATE_RES = [
    # 2025年6月9日 / 2025年6月 / 2025年
    ("cn_ymd", re.compile(r"(?<![0-9])(?P<y>[0-9]{4})\s?年"
                          r"(?:\s?(?P<m>[0-9]{1,2})\s?月(?:\s?(?P<d>[0-9]{1,2})\s?[日号])?)?")),
    # 6月9日
    ("cn_md", re.compile(r"(?<![0-9.])(?P<m>[0-9]{1,2})\s?月\s?(?P<d>[0-9]{1,2})\s?[日号]")),
    # 6月 / 6月份 (not 6个月, which is a duration)
    ("cn_m", re.compile(r"(?<![0-9.])(?P<m>[0-9]{1,2})\s?月(?!\s?[0-9])")),
    # 9日 (the 9th); "30日内" is a duration and is left to the general parser
    ("cn_d", re.compile(r"(?<![0-9.])(?P<d>[0-9]{1,2})\s?[日号](?!\s?(?:内|以内|之内))")),
    # 二〇二五年六月九日 / 六月九日 / 六月
    ("cn_ymd_words", re.compile(r"(?P<y>[〇零一二三四五六七八九]{4})年(?:(?P<m>" + _CN_SMALL_NUM + r")月(?:(?P<d>"
                                + _CN_SMALL_NUM + r")[日号])?)?")),
    ("cn_md_words", re.compile(r"(?<![一二三四五六七八九十个])(?P<m>" + _CN_SMALL_NUM + r")月(?:(?P<d>"
                               + _CN_SMALL_NUM + r")[日号])?")),
    # 2025-06-09, 2025/6/9
    ("iso", re.compile(r"(?<![0-9.])(?P<y>[0-9]{4})[-/.](?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})(?![0-9])")),
    # June 9, 2025 / June 9th / June 9
    ("en_mdy", re.compile(r"\b(?P<mon>" + _MON + r")\s+(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?\b"
                          r"(?:,?\s+(?P<y>[0-9]{4})\b)?")),
    # 9 June 2025 / 9th of June
    ("en_dmy", re.compile(r"\b(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>" + _MON
                          + r")(?![A-Za-z])(?:,?\s+(?P<y>[0-9]{4})\b)?")),
    # May 2025
    ("en_my", re.compile(r"\b(?P<mon>" + _MON + r"),?\s+(?P<y>[0-9]{4})\b")),
    # (on) the 9th
    ("en_the_d", re.compile(r"\b[Tt]he\s+(?P<d>[0-9]{1,2})(?:st|nd|rd|th)\b(?!\s*[A-Za-z0-9])")),
]

# Where each date pattern can match. The patterns start with lookbehinds or \b, so the regex
# engine cannot skip ahead and tries them at every position; most texts hold no date at all.
# Instead each is tried only where a match can start (`_date_starts`), in a text that holds one
# of the characters every match of it holds (`_DATE_NEEDS`).
_DATE_NEEDS: dict[str, tuple[str, ...]] = {
    "cn_ymd": ("年",), "cn_md": ("月",), "cn_m": ("月",), "cn_d": ("日号",), "cn_ymd_words": ("年",),
    "cn_md_words": ("月",), "iso": (), "en_mdy": (), "en_dmy": (), "en_my": (), "en_the_d": (),
}
assert set(_DATE_NEEDS) == {name for name, _ in _DATE_RES}
# Patterns whose match starts at the first digit of a run of ASCII digits ((?<![0-9]) or \b
# before it) and takes the whole run: (the run lengths it takes, the characters that can follow
# the run, whether whitespace can). "cn_md" reads `[0-9]{1,2}\s?月`, "iso" `[0-9]{4}[-/.]`,
# "en_dmy" `[0-9]{1,2}(?:st|nd|rd|th)?\s+`.
_DATE_RUNS = {"cn_ymd": ((4,), "年", True), "cn_md": ((1, 2), "月", True), "cn_m": ((1, 2), "月", True),
              "cn_d": ((1, 2), "日号", True), "iso": ((4,), "-/.", False), "en_dmy": ((1, 2), "snrt", True)}
# The same, looked up by (the character after a run, or " " for whitespace; the run's length).
_DATE_RUNS_BY_END: dict[tuple[str, int], list[str]] = {}
for _name, (_lengths, _chars, _space) in _DATE_RUNS.items():
    for _length in _lengths:
        for _char in _chars + (" " if _space else ""):
            _DATE_RUNS_BY_END.setdefault((_char, _length), []).append(_name)
_MONTH_STEM_RE = re.compile("|".join(sorted({m.capitalize()[:3] for m in _MONTHS})))  # every _MON starts so
# "en_mdy" and "en_my" read `_MON,?\s+` right before a digit run: it ends with one of these and
# is at most 11 characters long ("September.,").
_MONTH_LAST = frozenset(m[-1] for m in _MONTHS) | {".", ","}
_MONTH_SPAN = max(map(len, _MONTHS)) + 2
_CN_SMALL_DIGITS = "一二三四五六七八九十"
# "cn_md_words" starts at the start of a run of _CN_SMALL_DIGITS (its lookbehind excludes them) and
# takes the whole run, which 月 follows: exactly the matches of this (a character class first, so fast).
_CN_MONTH_WORDS_RE = re.compile(f"[{_CN_SMALL_DIGITS}][{_CN_SMALL_DIGITS}]*月")
# "cn_ymd_words" starts where four of these and 年 do; no such match can start inside another.
_CN_YEAR_WORDS_RE = re.compile("[〇零一二三四五六七八九][〇零一二三四五六七八九]{3}年")
_ORDINAL_SUFFIXES = ("st", "nd", "rd", "th")


def _may_hold(norm: str, needs: tuple[str, ...], known: dict) -> bool:
    """Whether `norm` holds one of the characters of each string in `needs`; `known` keeps the
    outcomes of tests already run on `norm` (several patterns share one)."""
    for need in needs:
        if need not in known:
            known[need] = need in norm if len(need) == 1 else any(c in norm for c in need)
        if not known[need]:
            return False
    return True


def _date_starts(norm: str, digit_runs: list[tuple[int, int]]) -> dict[str, list[int]]:
    """For each date pattern that can match in `norm`, ascending positions that include every
    position where it matches. `digit_runs`: _digit_runs(norm)."""
    starts: dict[str, list[int]] = {}
    for s, e in digit_runs:
        after = norm[e:e + 1]
        for name in _DATE_RUNS_BY_END.get((" " if after.isspace() else after, e - s), ()):
            starts.setdefault(name, []).append(s)
    known: dict = {}
    for name in [name for name in starts if not _may_hold(norm, _DATE_NEEDS[name], known)]:
        del starts[name]
    if _may_hold(norm, _DATE_NEEDS["cn_ymd_words"], known):
        starts["cn_ymd_words"] = [m.start() for m in _CN_YEAR_WORDS_RE.finditer(norm)]
    if _may_hold(norm, _DATE_NEEDS["cn_md_words"], known):
        starts["cn_md_words"] = [m.start() for m in _CN_MONTH_WORDS_RE.finditer(norm)]
    if digit_runs:
        starts["en_mdy"] = starts["en_my"] = _months_before_runs(norm, digit_runs)
        # "en_the_d": `[Tt]he\s+`, then a day of one or two digits and `(?:st|nd|rd|th)`.
        ends = [_end_before_space(norm, s) for s, e in digit_runs
                if e - s <= 2 and norm.startswith(_ORDINAL_SUFFIXES, e)]
        starts["en_the_d"] = sorted({j - 2 for j in ends if j >= 2 and norm[j - 2:j + 1] in ("the", "The")})
    return starts


def _end_before_space(norm: str, start: int) -> int:
    """Where the text before the whitespace right before `start` ends; -1: no such whitespace or text."""
    j = start - 1
    while j >= 0 and norm[j].isspace():
        j -= 1
    return j if j < start - 1 else -1


def _months_before_runs(norm: str, digit_runs: list[tuple[int, int]]) -> list[int]:
    """Where a month that whitespace and then a digit run follow can start."""
    starts = set()
    for s, _ in digit_runs:
        j = _end_before_space(norm, s)  # where the month (and its . or ,) ends
        if j >= 0 and norm[j] in _MONTH_LAST:
            starts.update(m.start() for m in _MONTH_STEM_RE.finditer(norm, max(0, j + 1 - _MONTH_SPAN), j + 1))
    return sorted(starts)


def _date_matches(regex: re.Pattern, norm: str, starts: list[int]):
    """The matches of regex.finditer(norm), in order, given where they can start."""
    # finditer's next match is the first one at or after the previous match's end (none is empty).
    end = 0
    for start in starts:
        if start >= end:
            m = regex.match(norm, start)
            if m:
                yield m
                end = m.end()


_EN_NUMBER_WORD = "|".join(sorted(list(_EN_SMALL) + list(_EN_TENS) + ["hundred"] + list(_EN_SCALES),
                                  key=len, reverse=True))
_EN_LEAD_WORD = "|".join(sorted(list(_EN_SMALL) + list(_EN_TENS), key=len, reverse=True))
_CORE_RE = re.compile(
    r"(?P<ar>(?<![0-9.])(?<![0-9],)(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)(?![0-9])"
    r"|(?P<cn>[零〇一二两三四五六七八九十百千万亿]+(?:点[零〇一二三四五六七八九]+)?)"
    r"|(?i:(?P<en>\b(?:a(?=[\s-]+(?:hundred|thousand|million|billion|trillion)\b)|" + _EN_LEAD_WORD + r")"
    r"(?:(?:[\s-]+and)?[\s-]+(?:" + _EN_NUMBER_WORD + r"))*\b))"
)

# Where a _CORE_RE match can start. Its three alternatives begin with disjoint characters (an
# ASCII digit, a Chinese numeral, a letter) and none can contain the others' first characters,
# so trying _CORE_RE anchored at these positions finds exactly what finditer() finds — without
# trying the whole pattern at every position (it starts with lookbehinds and \b, so the regex
# engine cannot skip ahead, and the English branch alone cost most of find_numbers).
# A pattern that starts with a character class lets the engine skip ahead ("[0-9]+" does not).
_CN_NUMERALS = "零〇一二两三四五六七八九十百千万亿"
_CN_NUMERAL_RUN_RE = re.compile(f"[{_CN_NUMERALS}][{_CN_NUMERALS}]*")
# The digits and English words are found on a mask of the text, a byte for each character:
# ASCII letters in lower case, digits as "0", "_" as is, everything else a space (non-ASCII
# characters via the "?" of encode("ascii", "replace")). On it the scans start with a literal
# byte, which the regex engine skips ahead to at C speed (a character class is tested at every
# position, and was the larger part of the cost on long texts).
_MASK_TABLE = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 or c == 95 else 48 if 48 <= c <= 57 else 32
                    for c in range(256))
_DIGIT_RUN_RE = re.compile(rb"00*")  # on the mask: the runs of ASCII digits ("ar" starts at one)


def _mask(norm: str) -> bytes:
    return norm.encode("ascii", "replace").translate(_MASK_TABLE)


def _lead_word_trie(words: list[str]) -> dict[str, str]:
    """First letter -> a regex for the rest, matching where one of `words` starts: a trie, so the
    engine tests a letter or two per position instead of every word. A word that has another as
    its prefix is left out (where it starts, the shorter one starts)."""
    words = sorted(w for w in words if not any(w != v and w.startswith(v) for v in words))

    def branches(tails: list[str]) -> str:  # no tail is empty unless it is the only one
        if len(tails) == 1:
            return tails[0]
        groups: dict[str, list[str]] = {}
        for t in tails:
            groups.setdefault(t[0], []).append(t[1:])
        alternatives = [c + branches(rest) for c, rest in groups.items()]
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    first: dict[str, list[str]] = {}
    for w in words:
        first.setdefault(w[0], []).append(w[1:])
    return {c: branches(tails) for c, tails in first.items()}


# On the mask, every position where the "en" alternative can match, and a few more: a number
# word (its letters) after a space (what every character but an ASCII letter, digit or "_"
# becomes; a word after one of those is not at a word boundary). ASCII look-alikes that (?i)
# matches in a word (İ ı ſ K) become spaces: texts with those take the plain finditer.
_EN_LEAD = _lead_word_trie(list(_EN_SMALL) + list(_EN_TENS))
assert "a" not in _EN_LEAD
_EN_LEAD["a"] = r"(?=[\s-]+(?:hundred|thousand|million|billion|trillion))"  # [\s-] becomes " "
_EN_START_WORDS = "(?:" + "|".join(c + rest for c, rest in _EN_LEAD.items()) + ")"
_EN_START_RE = re.compile((" " + _EN_START_WORDS).encode())  # the word starts one byte in
_EN_START_AT_0_RE = re.compile(_EN_START_WORDS.encode())
# The same positions, found from the word's first letter, which is faster in Chinese text (few
# ASCII letters, many spaces on the mask): the lookbehind tests the byte before it.
_EN_START_BY_LETTER_RE = re.compile("|".join(f"{c}(?<![a-z0-9_]{c}){rest}" for c, rest in _EN_LEAD.items()).encode())
_CASE_FOLD_ODDITIES = "\u0130\u0131\u017f\u212a"  # İ ı ſ K: (?i) matches ASCII, the mask does not


def _digit_runs(norm: str, mask: bytes | None = None) -> list[tuple[int, int]]:
    """(start, end) of each run of ASCII digits. `mask`: _mask(norm)."""
    return [m.span() for m in _DIGIT_RUN_RE.finditer(_mask(norm) if mask is None else mask)]


def _core_matches(norm: str, digit_runs: list[tuple[int, int]] | None = None, mask: bytes | None = None):
    """The matches of _CORE_RE.finditer(norm), in order. `digit_runs`: _digit_runs(norm);
    `mask`: _mask(norm)."""
    if any(c in norm for c in _CASE_FOLD_ODDITIES):
        yield from _CORE_RE.finditer(norm)
        return
    mask = _mask(norm) if mask is None else mask
    starts = [s for s, _ in (_digit_runs(norm, mask) if digit_runs is None else digit_runs)]
    # Either scan finds the same positions; the cheaper one depends on the share of spaces.
    if mask.count(b" ") * 2 < len(mask):
        starts += [m.start() + 1 for m in _EN_START_RE.finditer(mask)]
        if _EN_START_AT_0_RE.match(mask):
            starts.append(0)
    else:
        starts += [m.start() for m in _EN_START_BY_LETTER_RE.finditer(mask)]
    has_cn = False
    if not norm.isascii():  # Chinese numerals are not ASCII
        for m in _CN_NUMERAL_RUN_RE.finditer(norm):
            starts.append(m.start())
            has_cn = True
    starts.sort()
    starts.append(len(norm))  # sentinel: catch up on Chinese numerals after the last match
    end = 0
    match = _CORE_RE.match
    for start in starts:
        # A Chinese numeral match also starts where the previous match ended inside a run of
        # numerals ("三点五万": "三点五", then "万"): finditer tries that position next, and a
        # numeral always matches there.
        while has_cn and 0 < end < start and norm[end] in _CN_NUMERALS:
            m = match(norm, end)
            yield m
            end = m.end()
        if start < end or start == len(norm):
            continue
        m = match(norm, start)
        if m:
            yield m
            end = m.end()


_CURRENCY_PREFIX_RE = re.compile(
    r"(?:(?P<sym>US\$|U\.S\.\s?\$|HK\$|A\$|C\$|S\$|\$|¥|€|£)"
    r"|(?<![A-Za-z])(?P<code>RMB|CNY|USD|HKD|EUR|JPY|GBP|AUD|CAD)"
    r"|(?P<cn>人民币|港币|港元|美元|欧元))\s?\Z"
)
_SYMBOL_CURRENCY = {"US$": "USD", "U.S.$": "USD", "U.S. $": "USD", "HK$": "HKD", "A$": "AUD", "C$": "CAD",
                    "S$": "SGD", "$": "USD", "¥": "CNY", "€": "EUR", "£": "GBP"}
_WORD_CURRENCY = {"rmb": "CNY", "cny": "CNY", "usd": "USD", "hkd": "HKD", "eur": "EUR", "jpy": "JPY", "gbp": "GBP",
                  "aud": "AUD", "cad": "CAD", "人民币": "CNY", "港币": "HKD", "港元": "HKD", "美元": "USD",
                  "欧元": "EUR", "日元": "JPY", "英镑": "GBP", "澳元": "AUD", "加元": "CAD", "元": "CNY",
                  "yuan": "CNY", "renminbi": "CNY",
                  "euro": "EUR", "euros": "EUR", "yen": "JPY", "dollar": "USD", "dollars": "USD"}

_PERCENT_PREFIX = "百分之"
_PER_PREFIX_RE = re.compile(r"每\s?(?P<per>公斤|千克|吨|股)[\u4e00-\u9fff]{0,4}\Z")
_PER_PREFIX_ALONE_RE = re.compile(r"每\s?(?:公斤|千克|吨|股)")
_ORDINAL_PREFIX_RE = re.compile(r"(?:第|#|(?<![A-Za-z])No\.?\s?)\Z")
_VAGUE_PREFIXES = ("数", "几", "若干")
# The characters a match of the \Z-anchored prefix patterns can end with, before an optional
# whitespace character (their `\s?`): a search that cannot succeed is skipped (each tries every
# position of the head).
_ORDINAL_LAST = frozenset("第#o.")
_CURRENCY_LAST = frozenset("$¥€£BYDRP币元")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _may_end(head: str, last_chars: frozenset[str]) -> bool:
    last = head[-1:]
    return last in last_chars or last.isspace() and head[-2:-1] in last_chars


_CN_MAGNITUDES = {"万亿": 1e12, "千亿": 1e11, "百亿": 1e10, "十亿": 1e9, "亿": 1e8, "千万": 1e7, "百万": 1e6,
                  "十万": 1e5, "万": 1e4, "千": 1e3, "百": 1e2}
_EN_MAGNITUDES = {"trillion": 1e12, "tn": 1e12, "billion": 1e9, "bn": 1e9, "million": 1e6, "mn": 1e6,
                  "thousand": 1e3, "m": 1e6, "k": 1e3}
_APPROX_SUFFIX = r"(?:多|余)?"
_CN_MAGNITUDE_RE = re.compile(_APPROX_SUFFIX + r"(?P<mag>万亿|千亿|百亿|十亿|亿|千万|百万|十万|万|千(?![克米瓦])|百(?!分))")
_EN_MAGNITUDE_RE = re.compile(r"(?i:\s?(?P<mag>trillion|billion|million|thousand|bn|mn|tn)\b)")
# "$5m", "2.7m tonnes": an attached m/k only counts when money or a unit makes it unambiguous.
_EN_SHORT_MAGNITUDE_RE = re.compile(r"(?P<mag>m|k)\b")

_PER_UNIT = (r"(?P<per>(?i:kilograms?|kilos?|kg|metric\s+tons?|tonnes?|tons?|t|shares?|ounces?|oz|lbs?|pounds?)\b"
             r"|公斤|千克|吨|股)")
_PER_RE = re.compile(r"\s?(?:/|(?i:per|a|an)\s+|每)\s?" + _PER_UNIT)
_METRIC_RE = re.compile(r"^metric\s+")
_SPACE_RUN_RE = re.compile(r"\s+")
_PER_NAMES = {"kilogram": "kg", "kilograms": "kg", "kilo": "kg", "kilos": "kg", "kg": "kg", "公斤": "kg", "千克": "kg",
              "tonne": "t", "tonnes": "t", "ton": "t", "tons": "t", "t": "t", "吨": "t", "share": "share",
              "shares": "share", "股": "share", "ounce": "oz", "ounces": "oz", "oz": "oz", "lb": "lb", "lbs": "lb",
              "pound": "lb", "pounds": "lb"}

_CN_CURRENCY_SUFFIX_RE = re.compile(_APPROX_SUFFIX + r"(?P<cur>港元|港币|美元|欧元|日元|英镑|澳元|加元|人民币|元(?![素化旦首材正宇件器组]))")
_EN_CURRENCY_SUFFIX_RE = re.compile(
    r"\s(?i:(?P<qual>US|U\.S\.|Hong\s+Kong|HK|Australian|Canadian)\s+)?"
    r"(?i:(?P<cur>dollars?|yuan|renminbi|euros?|yen|USD|CNY|RMB|HKD|EUR|JPY|GBP)\b)"
)
_QUALIFIED_DOLLAR = {"us": "USD", "u.s.": "USD", "hong kong": "HKD", "hk": "HKD", "australian": "AUD",
                     "canadian": "CAD"}

_PERCENT_RE = re.compile(r"\s?(?:%|(?i:per\s?cent|percent|pct)\b)")
_POINTS_RE = re.compile(r"\s?(?i:percentage[\s-]points?\b|ppts?\b|pp\b)|个?百分点")
_CHENG_RE = re.compile(r"成(?!本|为|功|员|立|交|果|品|型|效|就|熟|分|都|长|年|绩|像|材|语|套|批|千|百|了|的|不)")

_QUANTITY_RE = re.compile(
    _APPROX_SUFFIX
    + r"(?:[\s-]?(?P<en>(?i:metric\s+tons?|tonnes?|tons?|kilograms?|kilos?)\b|kt\b|t\b|kg\b)|(?P<cn>公吨|吨|公斤|千克))"
)
_QUANTITY_UNITS = {"metric ton": "t", "metric tons": "t", "tonne": "t", "tonnes": "t", "ton": "t", "tons": "t",
                   "t": "t", "kt": "t", "公吨": "t", "吨": "t", "kilogram": "kg", "kilograms": "kg", "kilo": "kg",
                   "kilos": "kg", "kg": "kg", "公斤": "kg", "千克": "kg"}

_DURATION_RE = re.compile(
    r"(?:[\s-](?P<en>(?i:days?|weeks?|months?|years?|hours?|minutes?))\b)"
    r"|" + _APPROX_SUFFIX + r"(?P<cn>个多月|个月|个星期|星期|天|周(?!年)|小时|分钟|年|日)"
)
_DURATION_UNITS = {"day": "day", "week": "week", "month": "month", "year": "year", "hour": "hour",
                   "minute": "minute", "个多月": "month", "个月": "month", "个星期": "week", "星期": "week", "天": "day",
                   "周": "week", "小时": "hour", "分钟": "minute", "年": "year", "日": "day"}

_COUNT_NOUNS = (
    "items?|products?|companies|company|firms?|entities|entity|enterprises?|countries|nations|elements|minerals|"
    "metals|categories|types|kinds|goods|shipments?|cases?|people|persons|workers|jobs|licen[cs]es|permits|"
    "applications|tariff\\s+lines|lines|exporters|importers|producers|suppliers|mines|vessels|ships|containers|"
    "units|outlets|suspects|individuals|banks|factories|plants|projects|deals|agreements|measures|rules|"
    "provinces|cities|states|members|officials|sanctions|entries|codes|earths|magnets|chips|orders|smugglers|"
    "seizures|investigations|arrests"
)
_COUNT_STOP = ("the|a|an|of|in|on|at|to|from|by|for|with|was|were|is|are|be|been|has|have|had|that|this|"
               "which|who|per|than|or|as|its|their|his|her|it|they|he|she|we|said|says|after|before|since|"
               "over|under|about|more|less|up|down")
_EN_COUNT_RE = re.compile(
    r"(?:\s+(?!(?:" + _COUNT_STOP + r")\b)[A-Za-z][A-Za-z.'-]*){0,4}?\s+(?P<noun>(?i:" + _COUNT_NOUNS + r"))\b"
)
_CN_COUNT_RE = re.compile(_APPROX_SUFFIX + r"(?P<cl>种|项|家|个(?!月|多月|星期)|款|类|批|起|名|件|艘|座|宗|例|次|台|辆|人|位|条|份|只|枚|架|户|国)")
_TIMES_RE = re.compile(r"倍|(?i:-fold\b|\s?times\b)")
_YEAR_PREPOSITION_RE = re.compile(r"(?i:\b(?:in|since|by|from|until|till|through|before|after|during|of|"
                                  r"early|late|mid|end|for|year|fiscal|between|and|to)\s+)\Z")


# The characters a match of each suffix pattern can start with (_FIRST) and, where it can start
# with one whitespace character, the characters that can come after that one (_AFTER_SPACE): read
# off the patterns above. (?i) letters also match the look-alikes in _CASE_FOLD_ODDITIES. A
# pattern is tried only where these say it can match.
def _ci(letters: str) -> frozenset[str]:
    return frozenset(letters.lower() + letters.upper() + _CASE_FOLD_ODDITIES)


_CN_MAGNITUDE_FIRST = frozenset("多余万亿千百十")
_EN_MAGNITUDE_FIRST = _EN_MAGNITUDE_AFTER_SPACE = _ci("tbm")
_CN_CURRENCY_FIRST = frozenset("多余港美欧日英澳加人元")
_EN_CURRENCY_AFTER_SPACE = _ci("uhacdyrejg")  # US, HK, dollars, yuan, ...; it starts with whitespace
_PER_FIRST = _PER_AFTER_SPACE = frozenset("/每") | _ci("pa")
_PERCENT_FIRST = _PERCENT_AFTER_SPACE = frozenset("%") | _ci("p")
_POINTS_FIRST, _POINTS_AFTER_SPACE = frozenset("个百") | _ci("p"), _ci("p")
_QUANTITY_FIRST, _QUANTITY_AFTER_SPACE = frozenset("多余-公吨千") | _ci("mtk"), _ci("mtk")
_DURATION_FIRST, _DURATION_AFTER_SPACE = frozenset("多余-个星天周小年日分"), _ci("dwmyh")
_CN_COUNT_FIRST = frozenset("多余种项家个款类批起名件艘座宗例次台辆人位条份只枚架户国")
_EN_COUNT_AFTER_SPACE = _ci("abcdefghijklmnopqrstuvwxyz")  # or more whitespace; it starts with whitespace
_TIMES_FIRST, _TIMES_AFTER_SPACE = frozenset("倍-") | _ci("t"), _ci("t")
_SUFFIX_FIRST = (_CN_MAGNITUDE_FIRST | _EN_MAGNITUDE_FIRST | {"m", "k"} | _CN_CURRENCY_FIRST | _PER_FIRST
                 | _PERCENT_FIRST | _POINTS_FIRST | {"成"} | _QUANTITY_FIRST | _DURATION_FIRST | _CN_COUNT_FIRST
                 | _TIMES_FIRST)  # or whitespace


def _may_get_unit(norm: str, end: int, head: str) -> bool:
    """Whether a kind or unit can come to a Chinese numeral ending at `end` (`head` before it):
    a currency before it, 百分之, or a suffix pattern that can start after it."""
    c = norm[end:end + 1]
    return (c in _SUFFIX_FIRST or c.isspace() or head.endswith(_PERCENT_PREFIX)
            or _may_end(head, _CURRENCY_LAST))


@dataclass(slots=True)
class _Raw:
    """A mention while it is being parsed; frozen into a Number at the end."""

    start: int
    end: int
    base: float
    base_precision: float
    spelled: bool
    multiplier: float = 1.0
    kind: str = "number"
    unit: str = ""
    currency: str = ""
    per: str = ""
    has_magnitude: bool = False


def _claim(claimed: bytearray, start: int, end: int) -> None:
    claimed[start:end] = b"\x01" * (end - start)


def _free(claimed: bytearray, start: int, end: int) -> bool:
    return claimed.find(1, start, end) < 0


def _find_dates(norm: str, claimed: bytearray, digit_runs: list[tuple[int, int]]) -> list[_Raw]:
    found: list[_Raw] = []
    all_starts = _date_starts(norm, digit_runs)
    for name, regex in _DATE_RES:
        starts = all_starts.get(name)
        if not starts:
            continue
        for m in _date_matches(regex, norm, starts):
            start, end = m.span()
            if not _free(claimed, start, end):
                continue
            groups = m.groupdict()
            y = mo = d = 0
            spelled = name.endswith("_words")
            try:
                if groups.get("y"):
                    ytext = groups["y"]
                    y = int("".join(str(_CN_DIGITS[c]) for c in ytext)) if spelled else int(ytext)
                if groups.get("mon"):
                    mo = _MONTHS[groups["mon"].rstrip(".").lower()]
                elif groups.get("m"):
                    mo = int(_parse_cn_integer(groups["m"]) or 0) if spelled else int(groups["m"])
                if groups.get("d"):
                    d = int(_parse_cn_integer(groups["d"]) or 0) if spelled else int(groups["d"])
            except (KeyError, ValueError):
                continue
            has_month = bool(groups.get("m") or groups.get("mon"))
            if (groups.get("y") and not 1900 <= y <= 2100) or (has_month and not 1 <= mo <= 12):
                continue
            if groups.get("d") and not 1 <= d <= 31:
                continue
            if name == "en_the_d":
                start = m.start("d")  # "the 9th" -> the figure text is "9th"
            _claim(claimed, start, end)
            found.append(_Raw(start, end, float(y * 10000 + mo * 100 + d), 1.0, spelled, kind="date", unit="date"))
    return found


def _parse_core(alt: str, text: str) -> tuple[float, float, bool] | None:
    """(value, precision, spelled) of a core match of alternative `alt` ("ar", "cn" or "en"),
    or None when it is not a numeral."""
    if alt == "ar":
        digits = text.replace(",", "")
        decimals = len(digits.partition(".")[2])
        return float(digits), 10.0 ** -decimals, False
    if alt == "cn":
        value = _parse_cn_numeral(text)
        if value is None:
            return None
        frac = text.partition("点")[2]
        precision = 10.0 ** -len(frac) if frac else _trailing_zero_place(value)
        return value, precision, True
    value = _parse_en_words(text)
    if value is None:
        return None
    return float(value), _trailing_zero_place(value), True


_SPACE_RUN_AT_RE = re.compile(r"\s+")
_WORD_AT_RE = re.compile(r"\S+")
_COUNT_NOUN_AT_RE = re.compile(r"(?i:" + _COUNT_NOUNS + r")\b")


def _may_count(norm: str, pos: int) -> bool:
    """Whether _EN_COUNT_RE can match at `pos` (whitespace): its words and noun each follow a whole
    run of whitespace and start with a letter, so the noun starts one of the next five words. The
    regex itself (lazy word loop, stop-word lookaheads) is far costlier than this test."""
    for _ in range(5):
        space = _SPACE_RUN_AT_RE.match(norm, pos)
        if space is None:
            return False
        if _COUNT_NOUN_AT_RE.match(norm, space.end()):
            return True
        word = _WORD_AT_RE.match(norm, space.end())
        if word is None:  # the text ends with the whitespace
            return False
        pos = word.end()
    return False


def _known(word: str, table: dict) -> bool:
    """A matched word is in its table, unless it was spelled with a letter that only matches an ASCII
    one case-insensitively ("KİLO" lower-cases to "ki̇lo", "mıllıon" stays itself): such a spelling is
    not that word (a unit, currency, price unit, magnitude), and the number keeps no unit."""
    return word in table


def _apply_currency_suffix(norm: str, pos: int, raw: _Raw) -> int:
    c = norm[pos:pos + 1]
    m = _CN_CURRENCY_SUFFIX_RE.match(norm, pos) if c in _CN_CURRENCY_FIRST else None
    if m:
        raw.currency = _WORD_CURRENCY[m.group("cur")]
        return m.end()
    m = (_EN_CURRENCY_SUFFIX_RE.match(norm, pos)
         if c.isspace() and norm[pos + 1:pos + 2] in _EN_CURRENCY_AFTER_SPACE else None)
    if m:
        word = m.group("cur").lower()
        qual = (m.group("qual") or "").lower()
        qual = _SPACE_RUN_RE.sub(" ", qual)
        if not _known(word, _WORD_CURRENCY) or qual and not _known(qual, _QUALIFIED_DOLLAR):
            return pos
        if word.startswith("dollar") and qual:
            raw.currency = _QUALIFIED_DOLLAR[qual]
        elif word.startswith("dollar") and raw.currency:
            pass  # "HK$5 dollars" is odd, but the symbol is the more specific
        else:
            raw.currency = _WORD_CURRENCY[word]
        return m.end()
    return pos


def _parse_suffix(norm: str, alt: str, raw: _Raw, pos: int) -> int:
    """Read magnitude and unit after a core match of alternative `alt` into `raw`; returns where
    the mention ends. A pattern is tried only where its _FIRST and _AFTER_SPACE sets allow."""
    is_arabic = alt == "ar"
    c = norm[pos:pos + 1]
    after_space = norm[pos + 1:pos + 2] if c.isspace() else ""
    # Magnitude: Chinese and English numerals include theirs, except after 多/余 ("三十多万吨").
    if alt != "en":
        m = ((_CN_MAGNITUDE_RE.match(norm, pos) if c in _CN_MAGNITUDE_FIRST else None)
             or (_EN_MAGNITUDE_RE.match(norm, pos) if is_arabic and (
                 c in _EN_MAGNITUDE_FIRST or after_space in _EN_MAGNITUDE_AFTER_SPACE) else None))
        # Case-insensitive matching also takes look-alikes ("mıllıon", dotless ı) with no entry here.
        multiplier = m and (_CN_MAGNITUDES.get(m.group("mag")) or _EN_MAGNITUDES.get(m.group("mag").lower()))
        if multiplier:
            raw.multiplier = multiplier
            raw.has_magnitude = True
            pos = m.end()
        elif c == "m" or c == "k":  # _EN_SHORT_MAGNITUDE_RE
            m = _EN_SHORT_MAGNITUDE_RE.match(norm, pos)
            if m:
                after = m.end()
                unit_follows = bool(_QUANTITY_RE.match(norm, after) or _EN_COUNT_RE.match(norm, after)
                                    or _EN_CURRENCY_SUFFIX_RE.match(norm, after))
                if is_arabic and (raw.currency or unit_follows):
                    raw.multiplier = _EN_MAGNITUDES[m.group("mag")]
                    raw.has_magnitude = True
                    pos = after
    elif c in _EN_MAGNITUDE_FIRST or after_space in _EN_MAGNITUDE_AFTER_SPACE:
        # "two million" is inside the words; "five bn" is rare but harmless to accept.
        m = _EN_MAGNITUDE_RE.match(norm, pos)
        if m and m.group("mag").lower() not in ("thousand", "million", "billion", "trillion") \
                and m.group("mag").lower() in _EN_MAGNITUDES:
            raw.multiplier = _EN_MAGNITUDES[m.group("mag").lower()]
            raw.has_magnitude = True
            pos = m.end()

    # Money: a currency before or after, optionally a price unit ("per kilogram", "/吨", "每股").
    pos = _apply_currency_suffix(norm, pos, raw)
    c = norm[pos:pos + 1]
    after_space = norm[pos + 1:pos + 2] if c.isspace() else ""
    if raw.currency:
        raw.kind = "money"
        m = _PER_RE.match(norm, pos) if c in _PER_FIRST or after_space in _PER_AFTER_SPACE else None
        per = _METRIC_RE.sub("", m.group("per").lower()) if m else ""
        if _known(per, _PER_NAMES):
            raw.per = _PER_NAMES[per]
            pos = m.end()
        raw.unit = raw.currency + ("/" + raw.per if raw.per else "")
        return pos

    if c in _PERCENT_FIRST or after_space in _PERCENT_AFTER_SPACE:
        m = _PERCENT_RE.match(norm, pos)
        if m:
            raw.kind, raw.unit = "percent", "%"
            return m.end()
    if c in _POINTS_FIRST or after_space in _POINTS_AFTER_SPACE:
        m = _POINTS_RE.match(norm, pos)
        if m:
            raw.kind, raw.unit = "percent", "pp"
            return m.end()
    if c == "成" and not raw.has_magnitude and raw.base <= 10:
        m = _CHENG_RE.match(norm, pos)
        if m:
            # 九成 = nine tenths = 90 %.
            raw.kind, raw.unit = "percent", "%"
            raw.multiplier = 10.0
            return m.end()
    m = _QUANTITY_RE.match(norm, pos) if c in _QUANTITY_FIRST or after_space in _QUANTITY_AFTER_SPACE else None
    word = _SPACE_RUN_RE.sub(" ", (m.group("en") or m.group("cn")).lower()) if m else ""
    if _known(word, _QUANTITY_UNITS):
        raw.kind, raw.unit = "quantity", _QUANTITY_UNITS[word]
        if word == "kt":
            raw.multiplier *= 1000
        return m.end()
    m = _DURATION_RE.match(norm, pos) if c in _DURATION_FIRST or after_space in _DURATION_AFTER_SPACE else None
    word = (m.group("en").lower().rstrip("s") if m.group("en") else m.group("cn")) if m else ""
    if _known(word, _DURATION_UNITS):
        raw.kind, raw.unit = "duration", _DURATION_UNITS[word]
        return m.end()
    m = (_CN_COUNT_RE.match(norm, pos) if c in _CN_COUNT_FIRST else None) or (
        _EN_COUNT_RE.match(norm, pos) if (after_space in _EN_COUNT_AFTER_SPACE or after_space.isspace())
        and _may_count(norm, pos) else None)
    if m:
        raw.kind, raw.unit = "count", "item"
        return m.end()
    m = _TIMES_RE.match(norm, pos) if c in _TIMES_FIRST or after_space in _TIMES_AFTER_SPACE else None
    if m:
        raw.kind, raw.unit = "number", "x"
        return m.end()
    return pos


def _looks_like_year(raw: _Raw, alt: str, text: str) -> bool:
    return (alt == "ar" and "," not in text and "." not in text and not raw.has_magnitude
            and 1900 <= raw.base <= 2100)


def _find_general(norm: str, claimed: bytearray, digit_runs: list[tuple[int, int]], mask: bytes) -> list[_Raw]:
    found: list[_Raw] = []
    for core in _core_matches(norm, digit_runs, mask):
        start, end = core.span()
        if not _free(claimed, start, end):
            continue
        alt = core.lastgroup  # the alternative that matched: _CORE_RE has no other groups
        text = core.group()  # each alternative's group is the whole match
        is_arabic = alt == "ar"
        is_cn = alt == "cn"
        head = norm[max(0, start - 12):start]
        if is_cn and len(text) == 1 and not _may_get_unit(norm, end, head):
            continue  # a lone Chinese digit with no unit: skipped below ("一些", "统一")
        parsed = _parse_core(alt, text)
        if parsed is None:
            continue
        base, precision, spelled = parsed

        # Not a quantity at all: ordinals, list/issue numbers, times, versions, model names.
        if _may_end(head, _ORDINAL_LAST) and _ORDINAL_PREFIX_RE.search(head):
            continue
        if is_cn and head.endswith(_VAGUE_PREFIXES):
            continue  # 数十家 "dozens of", not ten
        if is_arabic:
            nxt = norm[end:end + 2]
            if nxt[:1] == ":" and nxt[1:2].isdigit() or head.endswith(":") and head[-2:-1].isdigit():
                continue  # 10:30, 1:2
            if nxt[:1] == "." and nxt[1:2].isdigit():
                continue  # version-like 3.5.1

        raw = _Raw(start, end, base, precision, spelled)
        prefix = _CURRENCY_PREFIX_RE.search(head) if _may_end(head, _CURRENCY_LAST) else None
        if prefix and not prefix.group("sym") \
                and not _known((prefix.group("code") or prefix.group("cn")).lower(), _WORD_CURRENCY):
            prefix = None
        if prefix:
            sym = prefix.group("sym")
            raw.currency = (_SYMBOL_CURRENCY[sym] if sym else
                            _WORD_CURRENCY[(prefix.group("code") or prefix.group("cn")).lower()])
            raw.start = start - (len(head) - prefix.start())
        elif is_arabic and (head[-1:] in _ASCII_LETTERS or head[-1:] == "-" and head[-2:-1] in _ASCII_LETTERS):
            continue  # Q1, G7, A320, COVID-19: part of a name, not a figure

        pos = _parse_suffix(norm, alt, raw, end)
        if head.endswith(_PERCENT_PREFIX) and raw.kind == "number" and raw.unit == "":
            raw.kind, raw.unit = "percent", "%"
            raw.start = start - 3
        if raw.kind == "money" and not raw.per and "每" in head:  # every match holds 每
            per_prefix = _PER_PREFIX_RE.search(head)
            if per_prefix:
                raw.per = _PER_NAMES[per_prefix.group("per")]
                raw.unit = f"{raw.currency}/{raw.per}"
                if _PER_PREFIX_ALONE_RE.fullmatch(per_prefix.group(0)) and raw.start == start:
                    raw.start = start - len(per_prefix.group(0))

        # A lone Chinese digit is only a number with a unit after it ("三个月", "五种"); alone it is
        # usually part of a word (一些, 五矿, 十分).
        if is_cn and len(text) == 1 and raw.kind == "number" and raw.unit == "":
            continue
        if is_arabic and pos < len(norm) and (norm[pos].isascii() and norm[pos].isalnum()):
            continue  # 5G, 3D, 2nd: glued to letters
        if raw.kind in ("number", "count") and _looks_like_year(raw, alt, text):
            # "in 2025" is a year; "2025 companies" is a count unless a preposition says year
            # ("in 2024 exporters shipped ..."); "2,025 tonnes" never gets here (unit, comma).
            if raw.kind == "number" or _YEAR_PREPOSITION_RE.search(head):
                raw.kind, raw.unit = "date", "date"
                raw.base, raw.multiplier, pos = base * 10000, 1.0, end
        raw.end = pos
        _claim(claimed, raw.start, raw.end)
        found.append(raw)
    return found


_RANGE_GAP_RE = re.compile(r"\s?(?:-|–|—|~|至|到|(?i:to))\s?")


def _propagate_ranges(raws: list[_Raw], norm: str) -> None:
    """'$10-15 billion', '10万至15万吨', '3 to 5 percent': both ends share currency, magnitude, unit."""
    for a, b in zip(raws, raws[1:]):
        if a.kind == "date" or b.kind == "date" or b.start - a.end > 4:
            continue  # _RANGE_GAP_RE matches at most 4 characters
        gap = norm[a.end:b.start]
        if not _RANGE_GAP_RE.fullmatch(gap):
            continue
        if a.kind == "money" and b.kind == "number" and b.unit == "":
            b.kind, b.currency, b.per, b.unit = "money", a.currency, a.per, a.unit
        elif a.kind == "number" and a.unit == "" and b.kind != "number":
            a.kind, a.unit, a.currency, a.per = b.kind, b.unit, b.currency, b.per
        if b.has_magnitude and not a.has_magnitude and a.kind == b.kind:
            a.multiplier, a.has_magnitude = b.multiplier, True
        if b.kind == "percent" and a.kind == "percent" and b.multiplier == 10.0 and a.multiplier == 1.0:
            a.multiplier = 10.0  # 三到五成


def find_numbers(text: str) -> list[Number]:
    """Every numeric mention in `text` (English or Chinese), in order, with normalised value and unit."""
    if not text:
        return []
    norm = fold_width(text)
    claimed = bytearray(len(norm))
    mask = _mask(norm)
    digit_runs = _digit_runs(norm, mask)
    raws = _find_dates(norm, claimed, digit_runs) + _find_general(norm, claimed, digit_runs, mask)
    raws.sort(key=lambda r: r.start)
    _propagate_ranges(raws, norm)
    numbers = []
    for r in raws:
        # Drop float noise from decimal * magnitude (18.4 * 1e9).
        value = _round15(r.base * r.multiplier)
        precision = _round15(r.base_precision * r.multiplier) if r.kind != "date" else 1.0
        numbers.append(Number(value, r.unit, r.kind, text[r.start:r.end], r.start, r.end, precision, r.spelled))
    return numbers


def _round15(x: float) -> float:
    """x to 15 significant digits."""
    if x.is_integer() and -1e15 < x < 1e15:
        return x  # 15 digits or fewer already: formatting and parsing give it back
    return float(f"{x:.15g}")


# --------------------------------------------------------------------------- matching

_MASS_IN_KG = {"kg": 1.0, "t": 1000.0}


def _dates_agree(a: float, b: float) -> bool:
    pa, pb = date_parts(a), date_parts(b)
    shared = [(x, y) for x, y in zip(pa, pb) if x and y]
    return bool(shared) and all(x == y for x, y in shared)


def _comparable(a: Number, b: Number) -> tuple[float, float, float, float] | None:
    """Both values (and precisions) in a common unit, or None when the units say different things."""
    if a.kind == "date" or b.kind == "date":
        return None
    if a.kind == "number" and a.unit == "" or b.kind == "number" and b.unit == "":
        # A bare number ("80 million") is the same figure as one stated with its unit.
        return a.value, b.value, a.precision, b.precision
    if a.kind == "quantity" and b.kind == "quantity" and a.unit in _MASS_IN_KG and b.unit in _MASS_IN_KG:
        fa, fb = _MASS_IN_KG[a.unit], _MASS_IN_KG[b.unit]
        return a.value * fa, b.value * fb, a.precision * fa, b.precision * fb
    if a.kind == "money" and b.kind == "money":
        cur_a, _, per_a = a.unit.partition("/")
        cur_b, _, per_b = b.unit.partition("/")
        # "1,890 yuan" restates "1890元/公斤" without the unit; a different price unit is different.
        if cur_a != cur_b or (per_a and per_b and per_a != per_b):
            return None
        return a.value, b.value, a.precision, b.precision
    if a.kind == b.kind and a.unit == b.unit:
        return a.value, b.value, a.precision, b.precision
    return None


def _within(x: float, y: float, precision: float) -> bool:
    """|x - y| within half the given place value and never more than 5 % apart."""
    diff = abs(x - y)
    scale = max(abs(x), abs(y))
    eps = 1e-9 * max(scale, 1.0)
    return diff <= min(0.5 * precision, 0.05 * scale) + eps


def values_match(a: Number, b: Number) -> bool:
    """Same figure: compatible units and values equal within the rounding of the less precise one.

    "80 million" = "80,000,000" = "8000万"; "18.4 billion" = "184亿"; "45%" = "百分之四十五";
    "about 1.3 billion" = "1,287,000,000". Dates match when every part both give agrees.
    """
    if a.kind == "date" or b.kind == "date":
        return a.kind == b.kind == "date" and _dates_agree(a.value, b.value)
    comparable = _comparable(a, b)
    if comparable is None:
        return False
    va, vb, pa, pb = comparable
    return _within(va, vb, max(pa, pb))


def supports(source: Number, claim: Number, approximate: bool = False) -> bool:
    """Does `source` back `claim`? Like values_match, but only the claim's own rounding counts.

    A claim may round the source ("1.3 billion" for 1,287,000,000) but not be more exact than it
    ("82,000" does not stand on "8万"). `approximate` (the claim says "about", "nearly", "约", ...)
    lets trailing zeros round too: "nearly 4,000 tonnes" stands on 3,980 tonnes.
    """
    if source.kind == "date" or claim.kind == "date":
        return values_match(source, claim)
    comparable = _comparable(source, claim)
    if comparable is None:
        return False
    vs, vc, _ps, pc = comparable
    if approximate:
        pc = max(pc, _trailing_zero_place(round(vc, 6)))
    return _within(vs, vc, pc)


# --------------------------------------------------------------------------- key figures

_KIND_SCORE = {"money": 50, "percent": 48, "quantity": 46, "count": 34, "duration": 24, "number": 8, "date": 0}
_TOPIC_WORDS = (
    "rare earth", "rare-earth", "antimony", "gallium", "germanium", "tungsten", "graphite", "magnet",
    "neodymium", "ndpr", "praseodymium", "dysprosium", "terbium", "yttrium", "lithium", "cobalt", "tariff",
    "duty", "duties", "levy", "export", "import", "control", "licen", "smuggl", "seiz", "price", "share",
    "stock", "revenue", "profit", "sales", "quota", "output", "production",
    "稀土", "锑", "镓", "锗", "钨", "石墨", "磁", "钕", "镨", "镝", "铽", "钇", "锂", "钴", "关税", "出口", "进口",
    "管制", "许可", "走私", "查获", "价格", "股价", "涨", "跌", "营收", "利润", "配额", "产量", "氧化", "销量",
)
_ZH_CURRENCY_NAMES = {"USD": "美元", "CNY": "人民币", "HKD": "港元", "EUR": "欧元", "JPY": "日元", "GBP": "英镑",
                      "AUD": "澳元", "CAD": "加元", "SGD": "新加坡元"}
_ZH_PER_NAMES = {"kg": "公斤", "t": "吨", "share": "股", "oz": "盎司", "lb": "磅"}
_ZH_QUANTITY_NAMES = {"t": "吨", "kg": "公斤"}
_ZH_DURATION_NAMES = {"day": "天", "week": "周", "month": "月", "year": "年", "hour": "小时", "minute": "分钟"}

_EN_LABEL_STOP = {
    "the", "a", "an", "of", "by", "to", "at", "on", "in", "with", "and", "about", "nearly", "over", "more", "than",
    "some", "around", "up", "almost", "roughly", "approximately", "was", "were", "is", "are", "has", "had", "have",
    "been", "its", "their", "his", "her", "from", "for", "as", "be", "will", "would", "which", "that", "this",
    "it", "they", "some", "least", "just", "only", "estimated", "total", "totalling", "totaling", "reach",
    "reached", "another", "further", "or", "per", "cent", "percent", "while", "when", "after",
}
_ZH_TRAILING_PARTICLES = ("达到", "高达", "多达", "超过", "约为", "不足", "仅为", "合计", "共计", "累计", "为", "达", "约",
                          "超", "逾", "近", "共", "计", "了", "是", "有", "的", "在", "于", "以", "仅", "已", "将", "再",
                          "和", "与", "及", "或", "把", "被", "其")
_ZH_LEADING_PARTICLES = ("的", "了", "是", "和", "与", "及", "其", "在", "对", "将", "把", "被", "为")


def generic_label(number: Number, lang: str) -> str:
    """A label from kind and unit alone: used for the language the article is not in."""
    cur, _, per = number.unit.partition("/")
    if lang == "zh":
        if number.kind == "percent":
            return "百分点" if number.unit == "pp" else "百分比"
        if number.kind == "money":
            name = _ZH_CURRENCY_NAMES.get(cur, cur)
            return f"价格（{name}/{_ZH_PER_NAMES.get(per, per)}）" if per else f"金额（{name}）"
        if number.kind == "quantity":
            return f"数量（{_ZH_QUANTITY_NAMES.get(number.unit, number.unit)}）"
        if number.kind == "duration":
            return f"时长（{_ZH_DURATION_NAMES.get(number.unit, number.unit)}）"
        if number.kind == "count":
            return "数量"
        if number.kind == "date":
            return "日期"
        return "倍数" if number.unit == "x" else "数值"
    if number.kind == "percent":
        return "percentage points" if number.unit == "pp" else "percentage"
    if number.kind == "money":
        return f"price ({cur}/{per})" if per else f"amount ({cur})"
    if number.kind == "quantity":
        return f"quantity ({number.unit})"
    if number.kind == "duration":
        return f"duration ({number.unit}s)"
    if number.kind == "count":
        return "count"
    if number.kind == "date":
        return "date"
    return "multiple" if number.unit == "x" else "number"


_EN_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'&.-]*")
_CLAUSE_BREAK = ",;:()[]\"“”!?。，；：、（）！？\n"


_EN_TEMPORAL = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "yesterday", "tomorrow", "year",
    "month", "week", "day", "last", "this", "next", "earlier", "later", "previous", "quarter", "so", "far",
}


def _clean_words(words: list[str]) -> list[str]:
    """Drop non-words and dates; trim function words from both ends."""
    words = [w.strip(".'") for w in words]
    words = [w for w in words if w and _EN_WORD_RE.fullmatch(w) and w.lower() not in _EN_TEMPORAL]
    while words and words[0].lower() in _EN_LABEL_STOP:
        words.pop(0)
    while words and words[-1].lower() in _EN_LABEL_STOP:
        words.pop()
    return words


def _en_label(text: str, number: Number) -> str:
    before = text[max(0, number.start - 120):number.start]
    after = text[number.end:number.end + 80]
    before_clause = re.split(r"[,;:()\[\]\"“”!?\n]|\.\s", before)[-1]
    after_clause = re.split(r"[,;:()\[\]\"“”!?\n]|\.(?:\s|$)", after)[0]
    after_words = after_clause.split()

    # "2,000 tonnes of smuggled antimony": the thing measured follows "of".
    if after_words and after_words[0].lower() == "of":
        taken = []
        for w in after_words[1:]:
            if w.lower() in _EN_LABEL_STOP or w.lower() in ("worth", "valued", "seized", "said")\
                    or not _EN_WORD_RE.fullmatch(w) or len(taken) == 3:
                break
            taken.append(w)
        if taken:
            return " ".join(taken)
    # The words leading up to it, nearest stretch between other numbers first:
    # "Prices of NdPr oxide rose 12.5% in May to 452,000 yuan" -> "NdPr oxide rose".
    segments = re.split(r"\S*\d\S*", before_clause)
    words_before = _clean_words(segments[-1].split()[-4:])
    article_before = bool(segments[-1].split()) and segments[-1].split()[-1].lower() in ("a", "an", "the")
    if words_before and not article_before:
        return " ".join(words_before)
    # "a 45% tariff on magnets": the figure modifies the noun after it.
    taken = []
    for w in after_words:
        if not _EN_WORD_RE.fullmatch(w) or len(taken) == 4:
            break
        if w.lower() in _EN_LABEL_STOP and (not taken or w.lower() not in ("on", "of", "for")):
            break
        taken.append(w)
    taken = _clean_words(taken)
    if taken:
        return " ".join(taken)
    for segment in reversed(segments[:-1]):
        words = _clean_words(segment.split()[-4:])
        if words:
            return " ".join(words)
    return ""


# Where a Chinese clause's subject phrase usually begins: after these, the rest names the figure.
_ZH_PHRASE_STARTS = ("以来", "全国", "其中", "据统计", "统计", "今年", "去年", "同期", "目前", "此前", "已经", "共计",
                     "累计", "合计", "共", "显示", "表示", "指出", "称")


def _zh_label(text: str, number: Number, prev_end: int = 0, next_start: int | None = None) -> str:
    """Words of the same clause before the figure (after any earlier number), or the noun after 的."""
    def clause_tail(s: str) -> str:
        cut = max((s.rfind(c) for c in _CLAUSE_BREAK), default=-1)
        s = s[cut + 1:]
        m = re.search(r"[0-9０-９.,%％]", s[::-1])
        return s[len(s) - m.start():] if m else s

    def clause_head(s: str) -> str:
        cut = min((i for i in (s.find(c) for c in _CLAUSE_BREAK) if i >= 0), default=len(s))
        s = s[:cut]
        m = re.search(r"[0-9０-９]", s)
        return s[:m.start()] if m else s

    next_start = len(text) if next_start is None else next_start
    before = clause_tail(text[max(0, prev_end, number.start - 40):number.start]).strip()
    after = clause_head(text[number.end:min(next_start, number.end + 30)]).strip()
    changed = True
    while changed and before:
        changed = False
        for p in _ZH_TRAILING_PARTICLES:
            if before.endswith(p):
                before = before[: -len(p)]
                changed = True
    if len(before) > 8:
        cuts = [before.rfind(p) + len(p) for p in _ZH_PHRASE_STARTS if p in before]
        cuts = [c for c in cuts if len(before) - c >= 2]
        if cuts:
            before = before[max(cuts):]
    # "34%的关税" / "8000万港元的罚款": the noun after 的 says what the figure is.
    if after.startswith("的") or not before:
        noun = after.lstrip("的")
        while noun and noun.startswith(_ZH_LEADING_PARTICLES):
            noun = noun[1:]
        noun = re.split(r"[，。；：、,;:\s]", noun)[0][:8]
        if noun:
            return noun
    return before[-10:]


def _is_noise(number: Number, text: str) -> bool:
    """Numbers that are never key figures: years, list markers, phone/ID numbers, 'one'."""
    if number.kind == "date":
        y, mo, d = date_parts(number.value)
        return bool(y) and not mo and not d  # a bare year is context, not a figure
    if number.spelled and number.value <= 1:
        return True
    if number.kind == "number" and number.unit == "":
        if number.spelled and number.value < 10:
            return True
        digits = re.sub(r"[^0-9]", "", fold_width(number.text))
        if len(digits) >= 7 and "," not in number.text:
            return True  # phone, ID or code number
        before = text[max(0, number.start - 2):number.start]
        after = text[number.end:number.end + 1]
        if before.endswith("[") and after == "]":
            return True  # [1] citation
        line_start = number.start == 0 or text[number.start - 1] == "\n"
        if line_start and after in (".", ")", "、", "．"):
            return True  # "1." list marker
        if before.endswith(("+", "-")) and len(digits) >= 3:
            return True
    return False


def _score(number: Number, folded_lower: str) -> float:
    score = float(_KIND_SCORE[number.kind])
    if number.start < 200:
        score += 12
    elif number.start < 600:
        score += 6
    window = folded_lower[max(0, number.start - 60):number.end + 40]
    if any(word in window for word in _TOPIC_WORDS):
        score += 10
    if number.spelled:
        score -= 10
    return score


# Key figures a brief lists at most (a merged source adds its own up to this).
MAX_FIGURES = 6


class KeyFigure(NamedTuple):
    """A key figure as plain data (bot.models.Figure's fields): what the feed-parser worker, which
    does not load pydantic, hands to the event loop."""

    text: str
    value: float | None
    unit: str
    label: dict[str, str]


def extract_figures(text: str, lang: str | None = None, max_figures: int = MAX_FIGURES,
                    numbers: list[Number] | None = None) -> list[Figure]:
    """The key figures of an article: story-carrying amounts first, each with a bilingual label.

    `Figure.text` is a verbatim substring of `text`. The label in the article's language comes from
    the words around the figure; the other language gets a kind/unit label, never a translation.
    """
    return as_figures(key_figures(text, lang, max_figures, numbers))


def as_figures(found: list[KeyFigure]) -> list[Figure]:
    # Imported here: the feed-parser worker process runs key_figures and need not load pydantic.
    from bot.models import Figure

    # Built by key_figures, so already valid: no validation pass (a cold poll makes thousands).
    return [Figure.model_construct(text=f.text, value=f.value, unit=f.unit, label=dict(f.label)) for f in found]


def key_figures(text: str, lang: str | None = None, max_figures: int = MAX_FIGURES,
                numbers: list[Number] | None = None) -> list[KeyFigure]:
    """extract_figures as plain data."""
    if not text or max_figures <= 0:
        return []
    if lang not in ("en", "zh"):
        from bot.analyse.text import detect_language

        lang = detect_language(text)
    other = "zh" if lang == "en" else "en"
    folded_lower = fold_width(text).lower()
    # Callers that already ran find_numbers(text) pass its result, so a text is parsed once.
    all_numbers = find_numbers(text) if numbers is None else numbers
    # Label context stops at neighbouring numbers: "5月镓出口量降至1.2吨" -> "镓出口量降至".
    neighbours = {n.start: (all_numbers[i - 1].end if i else 0,
                            all_numbers[i + 1].start if i + 1 < len(all_numbers) else len(text))
                  for i, n in enumerate(all_numbers)}
    candidates = [n for n in all_numbers if not _is_noise(n, text)]
    ranked = sorted(candidates, key=lambda n: (n.kind == "date", -_score(n, folded_lower), n.start))
    picked: list[Number] = []
    seen: set[tuple[str, str, float]] = set()
    for number in ranked:
        key = (number.kind, number.unit, round(number.value, 6))
        if key in seen:
            continue
        seen.add(key)
        picked.append(number)
        if len(picked) == max_figures:
            break
    figures = []
    for number in picked:
        context = (_zh_label(text, number, *neighbours[number.start]) if lang == "zh"
                   else _en_label(text, number))
        label = {lang: context or generic_label(number, lang), other: generic_label(number, other)}
        value = None if number.kind == "date" or number.value is None else float(number.value)
        figures.append(KeyFigure(number.text, value, number.unit, label))
    return figures
