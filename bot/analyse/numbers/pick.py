"""Key figures: the few numbers that carry an article's story, each with a bilingual label."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from bot.analyse.numbers.finder import find_numbers
from bot.analyse.numbers.labels import context_label, generic_label
from bot.analyse.numbers.number import Number, date_parts
from bot.analyse.numbers.width import fold_width
from bot.analyse.text import detect_language

if TYPE_CHECKING:
    from bot.models import Figure

# How many key figures are picked by default: bot.models.MAX_FIGURES, a brief's limit. Not imported
# from there: the feed-parser worker picks key figures and does not load pydantic (bot.pipeline.facts);
# tests/test_figures.py checks that the two agree.
MAX_KEY_FIGURES = 6

_KIND_SCORE = {"money": 50, "percent": 48, "quantity": 46, "count": 34, "duration": 24, "number": 8, "date": 0}
_TOPIC_WORDS = (
    "rare earth", "rare-earth", "antimony", "gallium", "germanium", "tungsten", "graphite", "magnet",
    "neodymium", "ndpr", "praseodymium", "dysprosium", "terbium", "yttrium", "lithium", "cobalt", "tariff",
    "duty", "duties", "levy", "export", "import", "control", "licen", "smuggl", "seiz", "price", "share",
    "stock", "revenue", "profit", "sales", "quota", "output", "production",
    "稀土", "锑", "镓", "锗", "钨", "石墨", "磁", "钕", "镨", "镝", "铽", "钇", "锂", "钴", "关税", "出口", "进口",
    "管制", "许可", "走私", "查获", "价格", "股价", "涨", "跌", "营收", "利润", "配额", "产量", "氧化", "销量",
)
_NON_DIGITS_RE = re.compile(r"[^0-9]")


class KeyFigure(NamedTuple):
    """A key figure as plain data (bot.models.Figure's fields): what the feed-parser worker, which
    does not load pydantic, hands to the event loop."""

    text: str
    value: float | None
    unit: str
    label: dict[str, str]


def _is_noise_number(number: Number, text: str) -> bool:
    """Bare numbers that are no figure: small spelled ones, phone/ID numbers, citations, list markers."""
    if number.spelled and number.value < 10:
        return True
    digits = _NON_DIGITS_RE.sub("", fold_width(number.text))
    if len(digits) >= 7 and "," not in number.text:
        return True  # phone, ID or code number
    before = text[max(0, number.start - 2):number.start]
    after = text[number.end:number.end + 1]
    if before.endswith("[") and after == "]":
        return True  # [1] citation
    line_start = number.start == 0 or text[number.start - 1] == "\n"
    if line_start and after in (".", ")", "、", "．"):
        return True  # "1." list marker
    return before.endswith(("+", "-")) and len(digits) >= 3


def _is_noise(number: Number, text: str) -> bool:
    """Numbers that are never key figures: years, list markers, phone/ID numbers, 'one'."""
    if number.kind == "date":
        y, mo, d = date_parts(number.value)
        return bool(y) and not mo and not d  # a bare year is context, not a figure
    if number.spelled and number.value <= 1:
        return True
    return number.kind == "number" and number.unit == "" and _is_noise_number(number, text)


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


def _pick(text: str, numbers: list[Number], max_figures: int) -> list[Number]:
    """The best-scoring numbers that are not noise, dates last, one for each (kind, unit, value)."""
    folded_lower = fold_width(text).lower()
    candidates = [n for n in numbers if not _is_noise(n, text)]
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
    return picked


def _neighbours(numbers: list[Number], length: int) -> dict[int, tuple[int, int]]:
    """For each number (by start), where the one before it ends and the one after it starts: label
    context stops at neighbouring numbers ("5月镓出口量降至1.2吨" -> "镓出口量降至")."""
    return {n.start: (numbers[i - 1].end if i else 0, numbers[i + 1].start if i + 1 < len(numbers) else length)
            for i, n in enumerate(numbers)}


def key_figures(text: str, lang: str | None = None, max_figures: int = MAX_KEY_FIGURES,
                numbers: list[Number] | None = None) -> list[KeyFigure]:
    """extract_figures as plain data. Callers that already ran find_numbers(text) pass its result
    as `numbers`, so a text is parsed once."""
    if not text or max_figures <= 0:
        return []
    if lang not in ("en", "zh"):
        lang = detect_language(text)
    other = "zh" if lang == "en" else "en"
    all_numbers = find_numbers(text) if numbers is None else numbers
    neighbours = _neighbours(all_numbers, len(text))
    figures = []
    for number in _pick(text, all_numbers, max_figures):
        context = context_label(text, number, lang, neighbours[number.start])
        label = {lang: context or generic_label(number, lang), other: generic_label(number, other)}
        value = None if number.kind == "date" or number.value is None else float(number.value)
        figures.append(KeyFigure(number.text, value, number.unit, label))
    return figures


def as_figures(found: list[KeyFigure]) -> list[Figure]:
    """Key figures as bot.models.Figure (on the event loop, not in the feed-parser worker)."""
    # Imported here, not at the top: the feed-parser worker runs key_figures and must not load
    # pydantic (bot.pipeline.facts; it would cost the worker ~9 MiB, see the P6 memory benchmark).
    from bot.models import Figure

    # Built by key_figures, so already valid: no validation pass (a cold poll makes thousands).
    return [Figure.model_construct(text=f.text, value=f.value, unit=f.unit, label=dict(f.label)) for f in found]


def extract_figures(text: str, lang: str | None = None, max_figures: int = MAX_KEY_FIGURES,
                    numbers: list[Number] | None = None) -> list[Figure]:
    """The key figures of an article: story-carrying amounts first, each with a bilingual label.

    `Figure.text` is a verbatim substring of `text`. The label in the article's language comes from
    the words around the figure; the other language gets a kind/unit label, never a translation.
    """
    return as_figures(key_figures(text, lang, max_figures, numbers))
