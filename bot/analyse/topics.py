"""Keyword relevance: which configured topics an item is about.

Latin-script keywords match case-insensitively on word boundaries, so "tariff" never fires
inside another word (users list plural forms themselves); CJK keywords match as substrings,
since Chinese has no spaces between words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.analyse.identity import fold

if TYPE_CHECKING:  # the feed-parser worker process matches topics without loading the config models
    from bot.config import Settings

_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _phrase_pattern(phrase: str) -> str:
    phrase = fold(phrase)
    if _CJK_RE.search(phrase):
        return re.escape(phrase)
    # Hyphens and spaces are interchangeable in feeds ("rare-earth" / "rare earth").
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", phrase) if p]
    if not parts:
        return r"(?<![\w])(?![\w])"
    # "(?<![\w])word…" written as "word(?<![\w]word)…": the same matches, but a pattern that
    # starts with a literal lets the regex engine skip ahead to it instead of trying every position.
    parts[0] = parts[0] + r"(?<![\w]" + parts[0] + ")"
    return r"[\s\-]+".join(parts) + r"(?![\w])"


def _required_literal(phrase: str) -> str:
    """A substring every match of `_phrase_pattern(phrase)` contains (its longest word)."""
    phrase = fold(phrase)
    if _CJK_RE.search(phrase):
        return phrase
    return max((p for p in re.split(r"[\s\-]+", phrase) if p), key=len, default="")


def _may_match(literals: tuple[str, ...], norm: str) -> bool:
    return any(literal in norm for literal in literals)


@dataclass
class _CompiledTopic:
    name: str
    keywords: re.Pattern
    exclude: re.Pattern | None
    # Substring tests before the regexes: word-boundary patterns cannot skip ahead to a literal,
    # and most entries contain none of a topic's words.
    keyword_literals: tuple[str, ...] = ()
    exclude_literals: tuple[str, ...] = ()
    # The phrases as configured, to name the one that matched (`explain`).
    keyword_phrases: tuple[str, ...] = ()
    exclude_phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicMatch:
    """A topic whose keywords occur in a text: the configured keyword that occurs first and, when an
    exclude phrase occurs too (so the topic does not match), the first such phrase."""
    topic: str
    keyword: str
    exclude: str | None = None


def _phrase_at(phrases: tuple[str, ...], norm: str, pos: int) -> str:
    """The first of `phrases` whose pattern matches at `pos`: the alternative the joined pattern took."""
    return next((p for p in phrases if re.compile(_phrase_pattern(p)).match(norm, pos)), phrases[0])


class TopicMatcher:
    def __init__(self, settings: Settings):
        self._topics: list[_CompiledTopic] = []
        for name, cfg in settings.topics.items():
            keywords = re.compile("|".join(_phrase_pattern(k) for k in cfg.keywords))
            exclude = re.compile("|".join(_phrase_pattern(k) for k in cfg.exclude)) if cfg.exclude else None
            self._topics.append(_CompiledTopic(name, keywords, exclude,
                                               tuple(_required_literal(k) for k in cfg.keywords),
                                               tuple(_required_literal(k) for k in cfg.exclude or ()),
                                               tuple(cfg.keywords), tuple(cfg.exclude or ())))

    def match(self, text: str, allowed: list[str] | None = None) -> list[str]:
        """Topics whose keywords occur in `text` and whose exclude phrases do not."""
        return self.match_folded(fold(text), allowed)

    def match_folded(self, norm: str, allowed: list[str] | None = None) -> list[str]:
        """`match` of a text given as fold(text)."""
        found = []
        for topic in self._topics:
            if allowed is not None and topic.name not in allowed:
                continue
            if not (_may_match(topic.keyword_literals, norm) and topic.keywords.search(norm)):
                continue
            if topic.exclude and _may_match(topic.exclude_literals, norm) and topic.exclude.search(norm):
                continue
            found.append(topic.name)
        return found

    def explain(self, text: str) -> list[TopicMatch]:
        """Why `match` decides as it does: every topic whose keywords occur in `text`, with the keyword
        and any exclude phrase that decided it (`match` returns those without an exclude)."""
        norm = fold(text)
        found = []
        for topic in self._topics:
            hit = _may_match(topic.keyword_literals, norm) and topic.keywords.search(norm)
            if not hit:
                continue
            veto = topic.exclude and _may_match(topic.exclude_literals, norm) and topic.exclude.search(norm)
            found.append(TopicMatch(topic.name, _phrase_at(topic.keyword_phrases, norm, hit.start()),
                                    _phrase_at(topic.exclude_phrases, norm, veto.start()) if veto else None))
        return found

    def keyword_hits(self, text: str) -> int:
        """How many keyword occurrences a sentence has (used to pick lead sentences)."""
        norm = fold(text)
        return sum(len(t.keywords.findall(norm)) for t in self._topics if _may_match(t.keyword_literals, norm))
