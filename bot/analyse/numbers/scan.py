"""Where numerals are in a text: CORE_RE, and the positions worth trying it at.

CORE_RE has three alternatives: Arabic digits ("ar"), a Chinese numeral ("cn") and English number
words ("en"). They begin with disjoint characters (an ASCII digit, a Chinese numeral, a letter) and
none can contain the others' characters, so the matches of each alternative on its own, merged in
order, are the matches of CORE_RE.finditer(). `core_matches` finds them that way, because trying
CORE_RE at every position is slow: it starts with lookbehinds and \\b, so the regex engine cannot
skip ahead (a pattern that starts with a literal or a character class lets it).
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from bot.analyse.numbers.lexicon import CASE_FOLD_ODDITIES, CN_NUMERALS, EN_SCALES, EN_SMALL, EN_TENS

_EN_NUMBER_WORD = "|".join(sorted([*EN_SMALL, *EN_TENS, "hundred", *EN_SCALES], key=len, reverse=True))
_EN_LEAD_WORD = "|".join(sorted([*EN_SMALL, *EN_TENS], key=len, reverse=True))
_CN_FRACTION = "(?:点[零〇一二三四五六七八九]+)?"
CORE_RE = re.compile(
    r"(?P<ar>(?<![0-9.])(?<![0-9],)(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)(?![0-9])"
    f"|(?P<cn>[{CN_NUMERALS}]+{_CN_FRACTION})"
    r"|(?i:(?P<en>\b(?:a(?=[\s-]+(?:hundred|thousand|million|billion|trillion)\b)|" + _EN_LEAD_WORD + r")"
    r"(?:(?:[\s-]+and)?[\s-]+(?:" + _EN_NUMBER_WORD + r"))*\b))"
)
# The "cn" alternative alone, written to start with a character class.
_CN_CORE_RE = re.compile(f"(?P<cn>[{CN_NUMERALS}][{CN_NUMERALS}]*{_CN_FRACTION})")

# Digits and English words are found on a mask of the text, a byte for each character: ASCII
# letters in lower case, digits as "0", "_" as is, everything else a space (non-ASCII characters
# via the "?" of encode("ascii", "replace")). On it the scans start with a literal byte, which the
# regex engine skips ahead to at C speed.
_MASK_TABLE = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 or c == 95 else 48 if 48 <= c <= 57 else 32
                    for c in range(256))
_DIGIT_RUN_RE = re.compile(rb"00*")  # on the mask: the runs of ASCII digits ("ar" starts at one)


def mask(norm: str) -> bytes:
    return norm.encode("ascii", "replace").translate(_MASK_TABLE)


def digit_runs(norm: str, masked: bytes | None = None) -> list[tuple[int, int]]:
    """(start, end) of each run of ASCII digits. `masked`: mask(norm)."""
    return [m.span() for m in _DIGIT_RUN_RE.finditer(mask(norm) if masked is None else masked)]


def _lead_word_trie(words: list[str]) -> str:
    """A regex matching where one of `words` starts, as a trie ("t(?:en|h(?:irt|ree)|w(?:e|o))"),
    so the engine tests a letter or two per position instead of every word. A word that has
    another as its prefix is left out (where it starts, the shorter one starts)."""
    words = sorted(w for w in words if not any(w != v and w.startswith(v) for v in words))

    def branches(tails: list[str]) -> str:  # no tail is empty unless it is the only one
        if len(tails) == 1:
            return tails[0]
        groups: dict[str, list[str]] = {}
        for t in tails:
            groups.setdefault(t[0], []).append(t[1:])
        alternatives = [c + branches(rest) for c, rest in groups.items()]
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    return branches(words)


# On the mask, a space and then where the "en" alternative can start: a number word's letters (a
# word after an ASCII letter, digit or "_" is not at a word boundary; every other character is a
# space on the mask) or "a" before a scale word ([\s-] is a space on the mask).
_EN_START_RE = re.compile((" (?:" + _lead_word_trie([*EN_SMALL, *EN_TENS])
                           + "|a(?= +(?:hundred|thousand|million|billion|trillion)))").encode())


def _en_starts(masked: bytes) -> list[int]:
    """Positions where the "en" alternative can match, and a few more. The mask does not have the
    letters (?i) matches besides ASCII ones (CASE_FOLD_ODDITIES): texts with those take finditer."""
    return [m.start() for m in _EN_START_RE.finditer(b" " + masked)]  # the space before: one byte in


def anchored_matches(regex: re.Pattern, text: str, starts: Iterable[int]) -> Iterator[re.Match]:
    """The matches of regex.finditer(text), in order, given ascending positions that include every
    position where one starts. Like finditer, a match hides those starting inside it."""
    end = 0
    for start in starts:
        if start >= end:
            m = regex.match(text, start)
            if m:
                yield m
                end = m.end()


def core_matches(norm: str, runs: list[tuple[int, int]], masked: bytes) -> list[re.Match]:
    """The matches of CORE_RE.finditer(norm), in order. `runs`: digit_runs(norm); `masked`: mask(norm).

    A match's alternative is its `lastgroup`, and its text the whole match."""
    if not norm.isascii() and any(map(norm.__contains__, CASE_FOLD_ODDITIES)):
        return list(CORE_RE.finditer(norm))
    starts = sorted([s for s, _ in runs] + _en_starts(masked))
    found = list(anchored_matches(CORE_RE, norm, starts))
    if not norm.isascii():  # Chinese numerals are not ASCII
        found += _CN_CORE_RE.finditer(norm)
        found.sort(key=re.Match.start)
    return found
