"""What comes before a numeral: a currency ("US$", "RMB", "人民币"), a price unit ("每吨"), 百分之, or a
sign that it is no quantity at all (第3, No. 5, 数十家, Q1)."""

from __future__ import annotations

import re

from bot.analyse.numbers.lexicon import PER_NAMES, SYMBOL_CURRENCY, WORD_CURRENCY
from bot.analyse.numbers.number import RawNumber

PERCENT_PREFIX = "百分之"
_CURRENCY_PREFIX_RE = re.compile(
    r"(?:(?P<sym>US\$|U\.S\.\s?\$|HK\$|A\$|C\$|S\$|\$|¥|€|£)"
    r"|(?<![A-Za-z])(?P<code>RMB|CNY|USD|HKD|EUR|JPY|GBP|AUD|CAD)"
    r"|(?P<cn>人民币|港币|港元|美元|欧元))\s?\Z"
)
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


def currency_may_precede(head: str) -> bool:
    return _may_end(head, _CURRENCY_LAST)


def is_ordinal(head: str) -> bool:
    """第3, #3, No. 3: a rank or a list number."""
    return _may_end(head, _ORDINAL_LAST) and _ORDINAL_PREFIX_RE.search(head) is not None


def is_vague(head: str) -> bool:
    """数十家 is "dozens of", not ten."""
    return head.endswith(_VAGUE_PREFIXES)


def follows_letters(head: str) -> bool:
    """Q1, G7, A320, COVID-19: part of a name, not a figure."""
    return head[-1:] in _ASCII_LETTERS or head[-1:] == "-" and head[-2:-1] in _ASCII_LETTERS


def read_currency_prefix(head: str, raw: RawNumber) -> bool:
    """A currency right before the numeral (`head` ends where it starts) into `raw`, the mention
    then starting with it; False when there is none."""
    m = _CURRENCY_PREFIX_RE.search(head) if currency_may_precede(head) else None
    if not m:
        return False
    sym = m.group("sym")
    raw.currency = SYMBOL_CURRENCY[sym] if sym else WORD_CURRENCY[(m.group("code") or m.group("cn")).lower()]
    raw.start -= len(head) - m.start()
    return True


def read_prefix_units(head: str, raw: RawNumber, start: int) -> None:
    """百分之四十五 is a percentage; 每吨1890元 a price per tonne (`start`: where the numeral starts)."""
    if head.endswith(PERCENT_PREFIX) and raw.bare:
        raw.kind, raw.unit = "percent", "%"
        raw.start = start - len(PERCENT_PREFIX)
    if raw.kind == "money" and not raw.per and "每" in head:  # every match holds 每
        per_prefix = _PER_PREFIX_RE.search(head)
        if per_prefix:
            raw.per = PER_NAMES[per_prefix.group("per")]
            raw.unit = f"{raw.currency}/{raw.per}"
            if _PER_PREFIX_ALONE_RE.fullmatch(per_prefix.group(0)) and raw.start == start:
                raw.start = start - len(per_prefix.group(0))
