"""The grounding guard: what a model writes in a brief must stand in the source article.

Model-written titles and summaries (English or Chinese, about an English or Chinese article)
are parsed with the same number parser as the article, and each number mention must match a
source number by normalised value *and* a compatible unit ("HK$80 million" stands on "8000万港元";
"HK$0.62 per tonne" does not stand on a share price of 0.62港元). A date may carry only the parts
the article gives: "the 9th" does not make "9月9日". Small numbers spelled out in prose ("two
outlets", "一家公司") are not checked: they are wording, and rejecting them would drop sound
sentences.

`check_brief` adds what a reader notices besides numbers: each language slot written in its own
language (names, tickers and acronyms that stand in the article excepted), no sentence that only
says what the article is about, and no advice to readers. Callers retry once with
`repair_feedback`, then drop the failing sentences (`drop_failing_sentences`). Callers count
rejections in `bot.metrics.GROUNDING_REJECTIONS`; these functions are pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from bot.analyse.numbers import Number, date_parts, find_numbers, fold_width, supports
from bot.analyse.text import detect_language, normalise_for_match, split_sentences
from bot.summarise.injection import advises_readers

# What a cached LLM brief has passed: the checks of this module, the planted-instruction filter
# (injection.py), the number parser both read with, and the summariser's check of the reply's
# shape. Raise it with any change to what they let through or reject: the LLM reply cache keys
# briefs by it, so briefs checked under another version are made and checked again, not reused.
CHECKS_VERSION = 5

__all__ = [
    "CHECKS_VERSION",
    "figure_in_source",
    "figure_is_span",
    "unsupported_numbers",
    "drop_unsupported_sentences",
    "drop_failing_sentences",
    "GroundingReport",
    "check_brief_text",
    "check_brief",
    "repair_feedback",
    "problem_kind",
]

# Words that make a figure explicitly approximate, so its trailing zeros may be rounded.
_APPROX_BEFORE_RE = re.compile(
    r"(?i:\b(?:about|around|approximately|roughly|nearly|almost|some|close\s+to|more\s+than|over|"
    r"upwards\s+of|just\s+(?:over|under)|under|less\s+than|up\s+to|an\s+estimated|estimated)\s+)\Z"
    r"|(?:约|近|超|逾|超过|接近|将近|大约|约为|不到|不足|上下|左右|多达|达到?)\Z"
)
_APPROX_AFTER_RE = re.compile(r"(?:多|余|左右|上下|以上|以下)")
# A per-share price is often written without "per share" in Chinese ("股价……报0.62港元").
_SHARE_CONTEXT_RE = re.compile(r"股|(?i:share|stock)")
_DATE_PARTS = ("year", "month", "day")


@dataclass(frozen=True)
class _Source:
    """An article parsed once for every check against it."""

    text: str
    numbers: tuple[Number, ...]
    dates: tuple[tuple[int, int, int], ...]
    normalised: str
    lang: str


@lru_cache(maxsize=8)
def _source(text: str) -> _Source:
    found = find_numbers(text)
    numbers = tuple(n for n in found if n.kind != "date")
    dates = tuple(date_parts(n.value) for n in found if n.kind == "date")
    return _Source(text, numbers, dates, normalise_for_match(text), detect_language(text))


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


# A key figure is a number with its unit and at most a few words ("up 45%", "逾8000万港元", "seven
# heavy rare earth elements"), not a sentence ("The Wall Street Journal reported on the 15th",
# "25吨锑金属走私案"). A Chinese character carries about half an English word.
FIGURE_MAX_WORDS, FIGURE_MAX_WORDS_BEFORE, FIGURE_MAX_HAN = 6, 3, 4
_LATIN_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['’.&-][A-Za-z0-9]+)*")
_HAN_RE = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]")
_HAN_RUN_RE = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]+")


def figure_is_span(figure_text: str) -> bool:
    """Is `figure_text` a short figure: one or two numbers, their units and at most a few words?"""
    numbers = find_numbers(figure_text)
    if not numbers or len(numbers) > 2:
        return False
    rest = figure_text
    for number in reversed(numbers):
        rest = rest[:number.start] + " " + rest[number.end:]
    before = len(_LATIN_WORD_RE.findall(figure_text[:numbers[0].start]))
    return (before <= FIGURE_MAX_WORDS_BEFORE and len(_LATIN_WORD_RE.findall(rest)) <= FIGURE_MAX_WORDS
            and len(_HAN_RE.findall(rest)) <= FIGURE_MAX_HAN)


# --------------------------------------------------------------------------- numbers

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


def _bare(number: Number) -> bool:
    return number.kind == "number" and number.unit == ""


def _units_compatible(source: Number, claim: Number, text: str) -> bool:
    """May `claim`'s unit be read into `source`? A claim may leave a unit out, never add one."""
    if _bare(claim):
        return True
    if _bare(source):
        return claim.kind in ("count", "number")  # "28 firms" may restate "28"; "28%" may not
    if source.kind == claim.kind == "money":
        per_source, per_claim = source.unit.partition("/")[2], claim.unit.partition("/")[2]
        if per_claim and not per_source:
            before = text[max(0, source.start - 30):source.end + 10]
            return per_claim == "share" and bool(_SHARE_CONTEXT_RE.search(before))
    return True  # kinds and units are compared by supports()


def _date_problem(claim: Number, dates: tuple[tuple[int, int, int], ...]) -> str | None:
    """Why a date claim does not stand on the article's dates, or None when it does.

    Each part the claim gives (year, month, day) must be given by a source date that agrees with
    it, and a month with a day by one date: "the 9th" and "in June" do not make "June 9"."""
    parts = date_parts(claim.value)

    def agrees(date: tuple[int, int, int]) -> bool:
        shared = [(a, b) for a, b in zip(date, parts) if a and b]
        return bool(shared) and all(a == b for a, b in shared)

    agreeing = [d for d in dates if agrees(d)]
    missing = [name for i, name in enumerate(_DATE_PARTS) if parts[i] and not any(d[i] for d in agreeing)]
    if not missing and parts[1] and parts[2] and not any(d[1] and d[2] for d in agreeing):
        missing = ["month"]
    if not missing:
        return None
    return f"the article does not give this {' or '.join(missing)}"


_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december")


def _month_named(claim: Number, src: _Source) -> bool:
    """Does the article name the month of a bare-month claim ("2月" for "late February")? A month
    named alone is no date to the number parser, so `src.dates` does not hold it."""
    year, month, day = date_parts(claim.value)
    if year or day or not 1 <= month <= 12:
        return False
    return re.search(rf"\b{_MONTH_NAMES[month - 1]}\b", src.text, re.I) is not None


def _number_problems(candidate: str, src: _Source) -> list[tuple[Number, str]]:
    """(mention, why) for each number in `candidate` that does not stand in the source."""
    out = []
    for number in find_numbers(candidate):
        if _is_prose_word(number):
            continue
        if number.kind == "date":
            why = _date_problem(number, src.dates)
            if why and not _verbatim_in(number, src.normalised) and not _month_named(number, src):
                out.append((number, why))
            continue
        approximate = _is_approximate(candidate, number)
        if any(_units_compatible(s, number, src.text) and supports(s, number, approximate=approximate)
               for s in src.numbers):
            continue
        if _verbatim_in(number, src.normalised):
            continue
        same_value = any(abs(s.value - number.value) <= 1e-9 * max(1.0, abs(number.value)) for s in src.numbers)
        out.append((number, "the article gives this number with another unit or meaning" if same_value
                    else "not in the article"))
    return out


def unsupported_numbers(candidate: str, source: str) -> list[str]:
    """Number mentions in `candidate` (as written there) that match no number in `source`.

    Works across languages and notations: "HK$80 million" ~ "8000万港元", "over 45%" ~ "超45%",
    "June 9" ~ "6月9日". A year such as "2025" must be in the source too, and so must the unit.
    """
    if not candidate:
        return []
    seen: list[str] = []
    for number, _why in _number_problems(candidate, _source(source or "")):
        if number.text not in seen:
            seen.append(number.text)
    return seen


def drop_unsupported_sentences(text: str, source: str, lang: str | None = None) -> tuple[str, list[str]]:
    """Remove the sentences of `text` that carry unsupported numbers: (kept text, removed sentences).

    Kept sentences are joined as the language writes them (no space in Chinese).
    """
    return _drop(text, source, lang, lambda sentence, lang, src: bool(_number_problems(sentence, src)))


# --------------------------------------------------------------------------- language slots and content

# Latin tokens a Chinese text may carry whatever the article says: units and "vs".
_LATIN_ALLOWED_IN_ZH = frozenset({"vs", "kg", "km", "t", "mm", "cm", "g", "mg", "oz", "lb", "mw", "gw", "kwh"})
# Capitalised at the start of English sentences, so standing in an article does not make them names.
_NOT_NAMES = frozenset({
    "The", "This", "That", "These", "Those", "A", "An", "In", "On", "At", "For", "With", "Of", "To", "And", "But",
    "However", "It", "As", "By", "From", "Its", "Their", "If", "When", "While", "After", "Before", "According",
    "Meanwhile", "Although", "There", "He", "She", "They", "We", "Is", "Was", "Are", "Has", "Have", "Will"})
_NAME_HAN_MIN, _NAME_HAN_MAX = 2, 6
_ASCII_LETTER_RE = re.compile("[A-Za-z]")
_META_RE = re.compile(
    r"^(?:the|this)\s+(?:article|text|piece|passage|page|post|essay|commentary)\s+(?:\w+\s+)?(?:discusses|describes"
    r"|examines|explores|talks\s+about|is\s+about|covers|focuses\s+on|highlights|provides|outlines|presents"
    r"|analy[sz]es|delves\s+into|looks\s+at|addresses|summari[sz]es|reports\s+on|deals\s+with|revolves\s+around)\b"
    r"|^(?:本文|该文|此文|文章|这篇文章|该文章|这篇报道|本报道|该报道|这篇评论)(?:主要|重点|着重)?(?:讨论|探讨|介绍|分析|讲述"
    r"|描述|论述|阐述|聚焦|关注|涉及|概述|总结|围绕|报道)", re.I)


def _outside_numbers(sentence: str) -> str:
    """`sentence` with its number mentions blanked: "HK$", "kg" and "年" there are notation."""
    for number in reversed(find_numbers(sentence)):
        sentence = sentence[:number.start] + " " + sentence[number.end:]
    return sentence


def _stands_as_name(word: str, src: _Source) -> bool:
    """A name, ticker or acronym of the article: "Bessent", "iPhone", "A股", "CPI" — or, in a Chinese
    article, any Latin word ("vivo"): there it can only be a name. "The" or "easing" is no name."""
    if word.islower() and src.lang != "zh" or word in _NOT_NAMES and not word.isupper():
        return False
    return re.search(r"(?<![A-Za-z])" + re.escape(word) + r"(?![A-Za-z])", src.text) is not None


def _language_problem(sentence: str, lang: str, src: _Source) -> str | None:
    """Why a sentence is not written in its slot's language, or None."""
    if lang == "zh":
        words = [w for w in _LATIN_WORD_RE.findall(_outside_numbers(sentence))
                 if w.lower() not in _LATIN_ALLOWED_IN_ZH and not _stands_as_name(w, src)]
        if words:
            return "English words in the Chinese text: " + ", ".join(dict.fromkeys(words))
    elif lang == "en":
        runs = _HAN_RUN_RE.findall(sentence)
        if not runs:
            return None
        if detect_language(sentence) == "zh":
            return "written in Chinese, not English"
        foreign = [r for r in runs if not (_NAME_HAN_MIN <= len(r) <= _NAME_HAN_MAX and r in src.text)]
        if foreign:
            return "Chinese characters in the English text: " + ", ".join(dict.fromkeys(foreign))
    return None


def _sentence_problems(sentence: str, lang: str, src: _Source) -> list[str]:
    problems = [f"{number.text} ({why})" for number, why in _number_problems(sentence, src)]
    wrong_language = _language_problem(sentence, lang, src)
    if wrong_language:
        problems.append(wrong_language)
    if advises_readers(sentence):
        problems.append(f"advice to readers: {sentence!r}")
    if _META_RE.search(sentence.strip()) and not find_numbers(sentence):
        problems.append(f"says what the article is about instead of stating its facts: {sentence!r}")
    return problems


def _drop(text: str, source: str, lang: str | None, fails) -> tuple[str, list[str]]:
    if not text:
        return "", []
    lang = lang if lang in ("en", "zh") else detect_language(text)
    src = _source(source or "")
    kept: list[str] = []
    removed: list[str] = []
    for sentence in split_sentences(text, lang):
        (removed if fails(sentence, lang, src) else kept).append(sentence)
    joiner = "" if lang == "zh" else " "
    return joiner.join(kept), removed


def drop_failing_sentences(text: str, source: str, lang: str | None = None) -> tuple[str, list[str]]:
    """Remove the sentences of `text` that `check_brief` faults: numbers, units or dates not in
    `source`, another language than `lang`, advice to readers, talk about the article instead of
    its facts. Returns (kept text, removed sentences)."""
    return _drop(text, source, lang, lambda sentence, lang, src: bool(_sentence_problems(sentence, lang, src)))


# --------------------------------------------------------------------------- reports

@dataclass
class GroundingReport:
    """What fails per checked field ("title.en", "summary.zh", ...): unsupported number mentions
    (`check_brief_text`), or every problem with its reason (`check_brief`)."""

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
    report = GroundingReport()
    for name, value in fields.items():
        report.checked.append(name)
        bad = unsupported_numbers(value or "", source)
        if bad:
            report.unsupported[name] = bad
    return report


def _field_language(name: str, value: str) -> str:
    lang = name.rpartition(".")[2]
    return lang if lang in ("en", "zh") else detect_language(value)


def check_brief(fields: dict[str, str], source: str) -> GroundingReport:
    """Every problem of each field ("title.en" ...; the suffix names the slot's language), with its
    reason: numbers, units and dates not in `source`, another language, advice, talk about the
    article. A summary must also state something: one made only of such talk fails as a whole."""
    src = _source(source or "")
    report = GroundingReport()
    for name, value in fields.items():
        report.checked.append(name)
        lang = _field_language(name, value or "")
        problems: list[str] = []
        for sentence in split_sentences(value or "", lang):
            for problem in _sentence_problems(sentence, lang, src):
                if problem not in problems:
                    problems.append(problem)
        if problems:
            report.unsupported[name] = problems
    return report


def repair_feedback(problems: dict[str, list[str]]) -> str:
    """The message that sends a faulted reply back to the model once."""
    lines = [f"- {name}: {'; '.join(items)}" for name, items in problems.items() if items]
    return ("Some parts of your reply cannot be used:\n" + "\n".join(lines)
            + "\nRewrite the reply. Use only numbers that appear in the article, with the unit the article "
              "gives them (the same value may be written in the other language's units, e.g. 8000万 = 80 "
              "million); a date keeps only the parts the article gives (a day without a month stays a day). "
              "Write each language's fields in that language only (names excepted). State facts from the "
              "article, not what the article is about, and give readers no advice. Remove any claim you "
              "cannot support. Reply with the complete JSON object only.")


def problem_kind(problem: str) -> str:
    """The metric label of one of `check_brief`'s problems: number, language, advice or content."""
    if problem.startswith(("English words", "Chinese characters", "written in")):
        return "language"
    if problem.startswith("advice"):
        return "advice"
    if problem.startswith("says what the article"):
        return "content"
    return "number"
