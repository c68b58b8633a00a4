"""Full-width and compatibility forms folded to ASCII, one character for one."""

from __future__ import annotations

import re
import unicodedata


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
# The comma first (its lookbehind after it): a literal first lets the regex engine skip ahead to it.
_FULLWIDTH_THOUSANDS_RE = re.compile("，(?<=[０-９]，)(?=[０-９])")
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
    if "，" in text:
        # Decided on the original neighbours, before they are folded themselves.
        text = _FULLWIDTH_THOUSANDS_RE.sub(",", text)
    # text.translate(_FOLD_TABLE), without a table lookup for every character (most of a Chinese
    # text folds to itself): each distinct character that may fold, replaced where it folds. What
    # it folds to folds to itself, so no replacement touches another's.
    for ch in set(_MAY_FOLD_RE.findall(text)):
        folded = _FOLD_TABLE[ord(ch)]
        if folded != ch:
            text = text.replace(ch, folded)
    return text
