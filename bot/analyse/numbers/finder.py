"""find_numbers: every numeric mention in English or Chinese text, with normalised value and unit.

Dates are found first; then each numeral (scan) is read with what stands before it (prefix) and
after it (suffix); last, the two ends of a range share what only one of them states.
"""

from __future__ import annotations

import re

from bot.analyse.numbers.dates import find_dates
from bot.analyse.numbers.number import Claims, Number, RawNumber
from bot.analyse.numbers.numerals import parse_core
from bot.analyse.numbers.prefix import (
    PERCENT_PREFIX,
    currency_may_precede,
    follows_letters,
    is_ordinal,
    is_vague,
    read_currency_prefix,
    read_prefix_units,
)
from bot.analyse.numbers.scan import core_matches, digit_runs, mask
from bot.analyse.numbers.suffix import parse_suffix, suffix_may_follow
from bot.analyse.numbers.width import fold_width

_HEAD = 12  # how far before a numeral its prefix is looked for
_YEAR_PREPOSITION_RE = re.compile(r"(?i:\b(?:in|since|by|from|until|till|through|before|after|during|of|"
                                  r"early|late|mid|end|for|year|fiscal|between|and|to)\s+)\Z")
_RANGE_GAP_RE = re.compile(r"\s?(?:-|–|—|~|至|到|(?i:to))\s?")


def _may_get_unit(norm: str, end: int, head: str) -> bool:
    """Whether a kind or unit can come to a Chinese numeral ending at `end` (`head` before it):
    a currency before it, 百分之, or a suffix pattern that can start after it."""
    return suffix_may_follow(norm, end) or head.endswith(PERCENT_PREFIX) or currency_may_precede(head)


def _not_a_quantity(norm: str, alt: str, head: str, end: int) -> bool:
    """Ordinals, list/issue numbers, vague amounts, times, versions."""
    if is_ordinal(head) or alt == "cn" and is_vague(head):
        return True
    if alt == "ar":
        nxt = norm[end:end + 2]
        if nxt[:1] == ":" and nxt[1:2].isdigit() or head.endswith(":") and head[-2:-1].isdigit():
            return True  # 10:30, 1:2
        if nxt[:1] == "." and nxt[1:2].isdigit():
            return True  # version-like 3.5.1
    return False


def _read_year(raw: RawNumber, alt: str, text: str, head: str) -> bool:
    """"in 2025" is a year; "2025 companies" is a count unless a preposition says year ("in 2024
    exporters shipped ..."); "2,025 tonnes" is neither (unit, comma). True when `raw` became one."""
    if raw.kind not in ("number", "count") or alt != "ar" or "," in text or "." in text or raw.has_magnitude \
            or not 1900 <= raw.base <= 2100:
        return False
    if raw.kind == "count" and not _YEAR_PREPOSITION_RE.search(head):
        return False
    raw.kind, raw.unit = "date", "date"
    raw.base, raw.multiplier = raw.base * 10000, 1.0
    return True


def _read_mention(norm: str, core: re.Match) -> RawNumber | None:
    """The mention around a numeral scan found, or None when it is no figure."""
    start, end = core.span()
    alt = core.lastgroup  # "ar", "cn" or "en"
    text = core.group()
    head = norm[max(0, start - _HEAD):start]
    # A lone Chinese digit is only a number with a unit ("三个月", "五种"); alone it is usually
    # part of a word (一些, 五矿, 十分, 统一).
    lone_cn_digit = alt == "cn" and len(text) == 1
    if lone_cn_digit and not _may_get_unit(norm, end, head):
        return None
    parsed = parse_core(alt, text)
    if parsed is None or _not_a_quantity(norm, alt, head, end):
        return None
    raw = RawNumber(start, end, *parsed)
    if not read_currency_prefix(head, raw) and alt == "ar" and follows_letters(head):
        return None
    pos = parse_suffix(norm, alt, raw, end)
    read_prefix_units(head, raw, start)
    if lone_cn_digit and raw.bare:
        return None
    if alt == "ar" and pos < len(norm) and norm[pos].isascii() and norm[pos].isalnum():
        return None  # 5G, 3D, 2nd: glued to letters
    raw.end = end if _read_year(raw, alt, text, head) else pos
    return raw


def _find_general(norm: str, claims: Claims, runs: list[tuple[int, int]], masked: bytes) -> list[RawNumber]:
    found: list[RawNumber] = []
    for core in core_matches(norm, runs, masked):
        if not claims.free(*core.span()):
            continue
        raw = _read_mention(norm, core)
        if raw is not None:
            claims.claim(raw.start, raw.end)
            found.append(raw)
    return found


def _share_range(a: RawNumber, b: RawNumber) -> None:
    """The ends of a range share currency, magnitude and unit."""
    if a.kind == "money" and b.bare:
        b.kind, b.currency, b.per, b.unit = "money", a.currency, a.per, a.unit
    elif a.bare and b.kind != "number":
        a.kind, a.unit, a.currency, a.per = b.kind, b.unit, b.currency, b.per
    if b.has_magnitude and not a.has_magnitude and a.kind == b.kind:
        a.multiplier, a.has_magnitude = b.multiplier, True
    if b.kind == "percent" and a.kind == "percent" and b.multiplier == 10.0 and a.multiplier == 1.0:
        a.multiplier = 10.0  # 三到五成


def _propagate_ranges(raws: list[RawNumber], norm: str) -> None:
    """'$10-15 billion', '10万至15万吨', '3 to 5 percent'."""
    for a, b in zip(raws, raws[1:]):
        if a.kind == "date" or b.kind == "date" or b.start - a.end > 4:
            continue  # _RANGE_GAP_RE matches at most 4 characters
        if _RANGE_GAP_RE.fullmatch(norm[a.end:b.start]):
            _share_range(a, b)


def _round15(x: float) -> float:
    """x to 15 significant digits: drops float noise from decimal * magnitude (18.4 * 1e9)."""
    if x.is_integer() and -1e15 < x < 1e15:
        return x  # 15 digits or fewer already: formatting and parsing give it back
    return float(f"{x:.15g}")


def find_numbers(text: str) -> list[Number]:
    """Every numeric mention in `text` (English or Chinese), in order, with normalised value and unit."""
    if not text:
        return []
    norm = fold_width(text)
    claims = Claims(len(norm))
    masked = mask(norm)
    runs = digit_runs(norm, masked)
    raws = find_dates(norm, claims, runs) + _find_general(norm, claims, runs, masked)
    raws.sort(key=lambda r: r.start)
    _propagate_ranges(raws, norm)
    numbers = []
    for r in raws:
        value = _round15(r.base * r.multiplier)
        precision = _round15(r.base_precision * r.multiplier) if r.kind != "date" else 1.0
        numbers.append(Number(value, r.unit, r.kind, text[r.start:r.end], r.start, r.end, precision, r.spelled))
    return numbers
