"""The one `Brief` model shared by every stage, store, adapter and command.

A brief *is* a story: the same story reported by several outlets is one brief
with several sources, so there is no separate Story type.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

# Key figures a brief lists at most (a merged source adds its own up to this). Key-figure picking
# (bot.analyse.numbers.MAX_KEY_FIGURES) picks as many.
MAX_FIGURES = 6

# Per-language text, e.g. {"en": "...", "zh": "..."}; keys follow config `languages`.
Bilingual = dict[str, str]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Figure(BaseModel):
    """A key figure: `text` is verbatim from the source; value/unit come from our parser."""

    model_config = ConfigDict(extra="forbid")

    text: str
    value: float | None = None
    # Normalised unit: "%", currency code ("USD", "CNY", "HKD", ...), "t", "kg",
    # "day", "item", ... or "" when the figure is a bare number.
    unit: str = ""
    label: Bilingual = Field(default_factory=dict)


@dataclass(frozen=True)
class SourceText:
    """A source's own title and summary in the language it is written in, copied from it as an
    extractive brief copies its article's: every number in them stands in that source."""

    lang: str
    title: str
    summary: str
    # The word to the reader that comes with it (that the source carried text aimed at automated
    # readers, left out); "" when none.
    note: str = ""


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    feed: str
    title: str
    published: datetime | None = None


# Brief fields left out of its JSON form while empty: the form changes only for the briefs they describe.
_OMITTED_WHEN_EMPTY = ("note", "untranslated", "filled_from")


class Brief(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    topics: list[str]
    title: Bilingual
    summary: Bilingual
    figures: list[Figure] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    mode: Literal["extractive", "llm"]
    created: datetime = Field(default_factory=utcnow)
    # A word to the reader per language, shown under the brief by every renderer (e.g. that the
    # article carried text aimed at automated readers, left out of the brief); empty when none.
    note: Bilingual = Field(default_factory=dict)
    # Languages whose title and summary only stand in for a translation (an extractive brief's
    # languages other than its article's; a model brief's where the model's text did not hold up),
    # until a source written in one of them joins the story.
    untranslated: list[str] = Field(default_factory=list)
    # Language -> place in `sources` of the later source whose own text fills that language.
    filled_from: dict[str, int] = Field(default_factory=dict)

    def to_json_dict(self) -> dict:
        """The documented JSON form (jsonl target, `briefbot brief --json`); "note", "untranslated"
        and "filled_from" only when they say something."""
        empty = {name for name in _OMITTED_WHEN_EMPTY if not getattr(self, name)}
        return self.model_dump(mode="json", exclude=empty or None)

    def add_source(self, source: Source, figures: Iterable[Figure] = (), topics: Iterable[str] = (),
                   text: SourceText | None = None) -> None:
        """Join another outlet's report of this story, in place: its source, the topics it adds and
        those of its figures not listed yet (up to MAX_FIGURES). A later source never costs a new
        summary; each figure it adds stands in that source. Its own `text` fills the language it is
        written in when that language is still untranslated: the first such source keeps it."""
        known = {(f.value, f.unit) for f in self.figures}
        for fig in figures:
            if len(self.figures) >= MAX_FIGURES:
                break
            if fig.value is not None and (fig.value, fig.unit) not in known:
                self.figures.append(fig)
                known.add((fig.value, fig.unit))
        for topic in topics:
            if topic not in self.topics:
                self.topics.append(topic)
        if (source.feed, source.url) not in {(s.feed, s.url) for s in self.sources}:
            self.sources.append(source)
            if text is not None and text.lang in self.untranslated:
                self._fill(text)

    def _fill(self, text: SourceText) -> None:
        """The latest source's own text becomes the brief's in its language."""
        self.title[text.lang] = text.title
        self.summary[text.lang] = text.summary
        self.add_note(text.lang, text.note)
        self.untranslated.remove(text.lang)
        self.filled_from[text.lang] = len(self.sources) - 1

    def add_note(self, lang: str, note: str) -> None:
        """`note` under the brief in `lang`, after any note already there (once: it may already say it)."""
        if note and note not in self.note.get(lang, ""):
            self.note[lang] = " ".join(filter(None, (self.note.get(lang), note)))

    @property
    def published(self) -> datetime | None:
        """Earliest known publication time among the sources."""
        times = [s.published for s in self.sources if s.published]
        return min(times) if times else None

    @property
    def primary_url(self) -> str | None:
        return self.sources[0].url if self.sources else None


def new_brief_id(*parts: str) -> str:
    """Stable short id derived from the first item's identity (feed + item key)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return "b_" + digest[:16]


class DigestSection(BaseModel):
    """One topic's part of a digest: ranked stories, reused from their briefs."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    label: Bilingual
    count: int  # stories in the window for this topic (may exceed len(briefs))
    briefs: list[Brief] = Field(default_factory=list)


class HeldBack(BaseModel):
    """Items of one feed the flood guard stored without briefs during a digest's window."""

    model_config = ConfigDict(extra="forbid")

    feed: str
    count: int
    topics: list[str] = Field(default_factory=list)


class Notice(BaseModel):
    """One message summarising what the flood guard held back from one feed in one poll: how many
    on-topic items, their topics and the top headlines with links. Each adapter renders it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    feed: str
    count: int
    topics: list[str] = Field(default_factory=list)
    headlines: list[Source] = Field(default_factory=list)  # the newest few, newest first
    created: datetime = Field(default_factory=utcnow)


class FeedTrouble(BaseModel):
    """A configured feed that was failing or switched off when a digest was built."""

    model_config = ConfigDict(extra="forbid")

    feed: str
    failures: int = 0  # failed fetches in a row
    disabled: bool = False  # switched off (HTTP 410) until its URL changes
    last_success: datetime | None = None


class Digest(BaseModel):
    """The on-call digest: platform-neutral; each delivery adapter renders it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    title: Bilingual
    window_start: datetime
    window_end: datetime
    timezone: str = "UTC"
    # Optional LLM overview (grounded against the included briefs); None when extractive.
    overview: Bilingual | None = None
    sections: list[DigestSection] = Field(default_factory=list)
    # Per feed, on-topic items held back by the flood guard in the window (briefed nowhere).
    held: list[HeldBack] = Field(default_factory=list)
    # Feed health when it was built: how many feeds are configured and those failing (none: all healthy).
    feeds_total: int = 0
    failing_feeds: list[FeedTrouble] = Field(default_factory=list)
    created: datetime = Field(default_factory=utcnow)

    @property
    def empty(self) -> bool:
        return not any(s.briefs for s in self.sections)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Target:
    """Where a brief or digest goes, written `kind:address` (`console` alone has no address).

    The adapter owning the kind validated it and says how it may be printed (`shown`): an address
    such as a webhook URL carries a secret that must never reach a log line or a chat reply."""

    kind: str
    address: str = ""
    shown: str | None = field(default=None, compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return self.kind if not self.address else f"{self.kind}:{self.address}"

    @property
    def redacted(self) -> str:
        return self.shown or str(self)
