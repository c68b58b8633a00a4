"""The grounding guard: every number in a posted brief must stand in the source article.

Model-written titles and summaries (English or Chinese, about an English or Chinese article)
are parsed with the same number parser as the article, and each number mention must match a
source number by normalised value and unit ("HK$80 million" stands on "8000万港元"). Small
numbers spelled out in prose ("two outlets", "一家公司") are not checked: they are wording, and
rejecting them would drop sound sentences. Everything else that does not match is reported, and
callers drop the sentence or the field. Callers count rejections in
`bot.metrics.GROUNDING_REJECTIONS`; these functions are pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.analyse.numbers import Number, find_numbers, fold_width, supports
from bot.analyse.text import detect_language, normalise_for_match, split_sentences

__all__ = [
    "figure_in_source",
    "unsupported_numbers",
    "drop_unsupported_sentences",
    "GroundingReport",
    "check_brief_text",
]

# Words that make a figure explicitly approximate, so its trailing zeros may be rounded.
_APPROX_BEFORE_RE = re.compile(
    r"(?i:\b(?:about|around|approximately|roughly|nearly|almost|some|close\s+to|more\s+than|over|"
    r"upwards\s+of|just\s+(?:over|under)|under|less\s+than|up\s+to|an\s+estimated|estimated)\s+)\Z"
    r"|(?:约|近|超|逾|超过|接近|将近|大约|约为|不到|不足|上下|左右|多达|达到?)\Z"
)
_APPROX_AFTER_RE = re.compile(r"(?:多|余|左右|上下|以上|以下)")


def figure_in_source(figure_text: str, source: str) -> bool:
    """Is `figure_text` in `source` verbatim, up to width, case and whitespace differences?"""
    needle = normalise_for_match(figure_text)
    if not needle:
        return False
    haystack = normalise_for_match(source)
    if needle in haystack:
        return True
    # Extraction may have split "8000 万港元" or joined "45 %"; spacing never changes a figure.
    return re.sub(r"\s+", "", needle) in re.sub(r"\s+", "", haystack)


def _is_prose_word(number: Number) -> bool:
    """Spelled-out small numbers without a real unit: "two outlets", "one", "一家", "一年来"."""
    if not number.spelled:
        return False
    if number.kind in ("count", "number") and number.unit in ("", "item") and number.value < 10:
        return True
    return number.kind == "duration" and number.value <= 1


def _is_approximate(text: str, number: Number) -> bool:
    before = fold_width(text[max(0, number.start - 16):number.start])
    after = text[number.end:number.end + 2]
    return bool(_APPROX_BEFORE_RE.search(before)) or bool(
        _APPROX_AFTER_RE.match(after)) or number.text.endswith(("多", "余"))


def _verbatim_in(number: Number, normalised_source: str) -> bool:
    """Fallback for mentions the parser reads differently in the two texts: the same digits
    standing alone in the source ("37%" must not be found inside "137%")."""
    needle = normalise_for_match(number.text)
    if not needle or not re.search(r"[0-9]", needle):
        return False
    pattern = r"(?<![0-9.,a-z])" + re.escape(needle) + r"(?![0-9]|[.,][0-9])"
    return re.search(pattern, normalised_source) is not None


def _unsupported(candidate: str, source_numbers: list[Number], normalised_source: str) -> list[Number]:
    out = []
    for number in find_numbers(candidate):
        if _is_prose_word(number):
            continue
        approximate = _is_approximate(candidate, number)
        if any(supports(s, number, approximate=approximate) for s in source_numbers):
            continue
        if _verbatim_in(number, normalised_source):
            continue
        out.append(number)
    return out


def unsupported_numbers(candidate: str, source: str) -> list[str]:
    """Number mentions in `candidate` (as written there) that match no number in `source`.

    Works across languages and notations: "HK$80 million" ~ "8000万港元", "over 45%" ~ "超45%",
    "June 9" ~ "6月9日". A year such as "2025" must be in the source too.
    """
    if not candidate:
        return []
    source_numbers = find_numbers(source or "")
    normalised_source = normalise_for_match(source or "")
    seen: list[str] = []
    for number in _unsupported(candidate, source_numbers, normalised_source):
        if number.text not in seen:
            seen.append(number.text)
    return seen


def drop_unsupported_sentences(text: str, source: str, lang: str | None = None) -> tuple[str, list[str]]:
    """Remove the sentences of `text` that carry unsupported numbers: (kept text, removed sentences).

    Kept sentences are joined as the language writes them (no space in Chinese).
    """
    if not text:
        return "", []
    lang = lang if lang in ("en", "zh") else detect_language(text)
    source_numbers = find_numbers(source or "")
    normalised_source = normalise_for_match(source or "")
    kept: list[str] = []
    removed: list[str] = []
    for sentence in split_sentences(text, lang):
        if _unsupported(sentence, source_numbers, normalised_source):
            removed.append(sentence)
        else:
            kept.append(sentence)
    joiner = "" if lang == "zh" else " "
    return joiner.join(kept), removed


@dataclass
class GroundingReport:
    """Unsupported number mentions per checked field ("title.en", "summary.zh", ...)."""

    unsupported: dict[str, list[str]] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.unsupported.values())

    @property
    def failed_fields(self) -> list[str]:
        return [name for name, numbers in self.unsupported.items() if numbers]

    def describe(self) -> str:
        """One line for logs, e.g. 'summary.en: 37%, $2 billion'."""
        if self.ok:
            return "all numbers grounded"
        return "; ".join(f"{name}: {', '.join(self.unsupported[name])}" for name in self.failed_fields)


def check_brief_text(fields: dict[str, str], source: str) -> GroundingReport:
    """Check every field's numbers against `source` (the article text the brief is about)."""
    source_numbers = find_numbers(source or "")
    normalised_source = normalise_for_match(source or "")
    report = GroundingReport()
    for name, value in fields.items():
        report.checked.append(name)
        bad: list[str] = []
        for number in _unsupported(value or "", source_numbers, normalised_source):
            if number.text not in bad:
                bad.append(number.text)
        if bad:
            report.unsupported[name] = bad
    return report
