"""Dates: "2025年6月9日", "六月九日", "2025-06-09", "June 9, 2025", "9th of June", "the 9th".

They are found before any other number, so "2025" in "2025年6月" is part of a date, not a count.
"""

from __future__ import annotations

import re

from bot.analyse.numbers.lexicon import CN_DIGITS, MONTHS
from bot.analyse.numbers.number import Claims, RawNumber
from bot.analyse.numbers.numerals import parse_cn_integer
from bot.analyse.numbers.scan import anchored_matches

# Capitalised only: "may" is a verb, "march" a noun.
_MON = "(?:" + "|".join(sorted((m.capitalize() for m in MONTHS), key=len, reverse=True)) + r")\.?"
_CN_SMALL_NUM = "[一二三四五六七八九十]{1,3}"

DATE_RES = [
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

# --------------------------------------------------------------------------- where a date can start

# The patterns start with lookbehinds or \b, so the regex engine cannot skip ahead and would try
# them at every position, and most texts hold no date at all. Instead each is tried only where a
# match can start (`date_starts`), in a text that holds one of the characters every match of it
# holds (_DATE_NEEDS; "": no such test).
_DATE_NEEDS = {"cn_ymd": "年", "cn_md": "月", "cn_m": "月", "cn_d": "日号", "cn_ymd_words": "年", "cn_md_words": "月",
               "iso": "", "en_mdy": "", "en_dmy": "", "en_my": "", "en_the_d": ""}
assert set(_DATE_NEEDS) == {name for name, _ in DATE_RES}

# Patterns whose match starts at the first digit of a run of ASCII digits ((?<![0-9]) or \b
# before it) and takes the whole run: (the run lengths it takes, the characters that can follow
# the run, whether whitespace can). "cn_md" reads `[0-9]{1,2}\s?月`, "iso" `[0-9]{4}[-/.]`,
# "en_dmy" `[0-9]{1,2}(?:st|nd|rd|th)?\s+`.
_DATE_RUNS = {"cn_ymd": ((4,), "年", True), "cn_md": ((1, 2), "月", True), "cn_m": ((1, 2), "月", True),
              "cn_d": ((1, 2), "日号", True), "iso": ((4,), "-/.", False), "en_dmy": ((1, 2), "snrt", True)}


def _runs_by_end(runs_table: dict) -> dict[tuple[str, int], list[str]]:
    """_DATE_RUNS looked up by (the character after a run, or " " for whitespace; the run's length)."""
    by_end: dict[tuple[str, int], list[str]] = {}
    for name, (lengths, chars, space) in runs_table.items():
        for length in lengths:
            for char in chars + (" " if space else ""):
                by_end.setdefault((char, length), []).append(name)
    return by_end


_DATE_RUNS_BY_END = _runs_by_end(_DATE_RUNS)

# "cn_ymd_words" starts where four of these and 年 do; no such match can start inside another.
# "cn_md_words" starts at the start of a run of small numerals (its lookbehind excludes them) and
# takes the whole run, which 月 follows. Both regexes start with a character class, so they are fast.
_CN_SMALL_DIGITS = "一二三四五六七八九十"
_CN_WORD_STARTS = {"cn_ymd_words": re.compile("[〇零一二三四五六七八九][〇零一二三四五六七八九]{3}年"),
                   "cn_md_words": re.compile(f"[{_CN_SMALL_DIGITS}][{_CN_SMALL_DIGITS}]*月")}

_MONTH_STEM_RE = re.compile("|".join(sorted({m.capitalize()[:3] for m in MONTHS})))  # every _MON starts so
# "en_mdy" and "en_my" read `_MON,?\s+` right before a digit run: it ends with one of these and
# is at most 11 characters long ("September.,").
_MONTH_LAST = frozenset(m[-1] for m in MONTHS) | {".", ","}
_MONTH_SPAN = max(map(len, MONTHS)) + 2
_ORDINAL_SUFFIXES = ("st", "nd", "rd", "th")


def _may_hold(norm: str, need: str) -> bool:
    """Whether `norm` holds one of the characters of `need` (always, when `need` is empty)."""
    return not need or any(map(norm.__contains__, need))


def _starts_at_runs(norm: str, runs: list[tuple[int, int]]) -> dict[str, list[int]]:
    """The _DATE_RUNS patterns that can start at each digit run, given its length and what follows."""
    starts: dict[str, list[int]] = {}
    for s, e in runs:
        after = norm[e:e + 1]
        for name in _DATE_RUNS_BY_END.get((" " if after.isspace() else after, e - s), ()):
            starts.setdefault(name, []).append(s)
    return starts


def _end_before_space(norm: str, start: int) -> int:
    """Where the text before the whitespace right before `start` ends; -1: no such whitespace or text."""
    j = start - 1
    while j >= 0 and norm[j].isspace():
        j -= 1
    return j if j < start - 1 else -1


def _months_before_runs(norm: str, runs: list[tuple[int, int]]) -> list[int]:
    """Where a month that whitespace and then a digit run follow can start ("en_mdy", "en_my")."""
    starts = set()
    for s, _ in runs:
        j = _end_before_space(norm, s)  # where the month (and its . or ,) ends
        if j >= 0 and norm[j] in _MONTH_LAST:
            starts.update(m.start() for m in _MONTH_STEM_RE.finditer(norm, max(0, j + 1 - _MONTH_SPAN), j + 1))
    return sorted(starts)


def _the_before_ordinals(norm: str, runs: list[tuple[int, int]]) -> list[int]:
    """Where "en_the_d" can start: `[Tt]he\\s+`, then a day of one or two digits and an ordinal suffix."""
    ends = [_end_before_space(norm, s) for s, e in runs if e - s <= 2 and norm.startswith(_ORDINAL_SUFFIXES, e)]
    return sorted({j - 2 for j in ends if j >= 2 and norm[j - 2:j + 1] in ("the", "The")})


def date_starts(norm: str, runs: list[tuple[int, int]]) -> dict[str, list[int]]:
    """For each date pattern that can match in `norm`, ascending positions that include every
    position where it matches. `runs`: scan.digit_runs(norm)."""
    starts = {name: found for name, found in _starts_at_runs(norm, runs).items()
              if _may_hold(norm, _DATE_NEEDS[name])}
    for name, regex in _CN_WORD_STARTS.items():
        if _may_hold(norm, _DATE_NEEDS[name]):
            starts[name] = [m.start() for m in regex.finditer(norm)]
    if runs:
        starts["en_mdy"] = starts["en_my"] = _months_before_runs(norm, runs)
        starts["en_the_d"] = _the_before_ordinals(norm, runs)
    return starts


# --------------------------------------------------------------------------- reading a date

def _year(text: str | None, spelled: bool) -> int:
    if not text:
        return 0
    return int("".join(str(CN_DIGITS[c]) for c in text)) if spelled else int(text)


def _month_or_day(text: str | None, spelled: bool) -> int:
    if not text:
        return 0
    return int(parse_cn_integer(text) or 0) if spelled else int(text)


def _date_value(groups: dict[str, str | None], spelled: bool) -> int | None:
    """year*10000 + month*100 + day of a date match's groups; None when it is no real date."""
    try:
        y = _year(groups.get("y"), spelled)
        mon = groups.get("mon")
        mo = MONTHS[mon.rstrip(".").lower()] if mon else _month_or_day(groups.get("m"), spelled)
        d = _month_or_day(groups.get("d"), spelled)
    except (KeyError, ValueError):
        return None
    if groups.get("y") and not 1900 <= y <= 2100:
        return None
    if (groups.get("m") or mon) and not 1 <= mo <= 12:
        return None
    if groups.get("d") and not 1 <= d <= 31:
        return None
    return y * 10000 + mo * 100 + d


def find_dates(norm: str, claims: Claims, runs: list[tuple[int, int]]) -> list[RawNumber]:
    """The dates in `norm`, each pattern in turn; claims what they cover. `runs`: scan.digit_runs(norm)."""
    found: list[RawNumber] = []
    all_starts = date_starts(norm, runs)
    for name, regex in DATE_RES:
        starts = all_starts.get(name)
        if not starts:
            continue  # no match can start anywhere (most texts hold no date at all)
        for m in anchored_matches(regex, norm, starts):
            start, end = m.span()
            if not claims.free(start, end):
                continue
            spelled = name.endswith("_words")
            value = _date_value(m.groupdict(), spelled)
            if value is None:
                continue
            if name == "en_the_d":
                start = m.start("d")  # "the 9th" -> the figure text is "9th"
            claims.claim(start, end)
            found.append(RawNumber(start, end, float(value), 1.0, spelled, kind="date", unit="date"))
    return found
