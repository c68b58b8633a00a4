"""What a poll needs to know about each parsed entry, worked out where the entry is parsed.

An entry's identity, topics, language, the figures in its title and body that can identify its
story, its story-matching words and its key figures are pure functions of the entry and the
topic keywords, so they are computed next to the parser — in the parser
worker process, on the second core — rather than on the event loop, which is what bounds a cold
poll. Entries the poll then finds already seen (or outside the feed's own topics) were analysed
for nothing; that costs the other core, not the loop.

Loaded by the worker process: no pydantic, no configuration models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from bot.analyse.numbers import KeyFigure, find_numbers, key_figures
from bot.analyse.identity import ItemIdentity, fold, identify
from bot.analyse.stories import signature_words, story_numbers
from bot.analyse.text import detect_language
from bot.analyse.topics import TopicMatcher
from bot.ingest.parse import ParsedEntry, ParsedFeed
from bot.summarise.injection import strip_planted

__all__ = ["AnalysedFeed", "EntryFacts", "analyse_feed", "entry_facts"]


@dataclass
class EntryFacts:
    ident: ItemIdentity
    topics: list[str]  # every configured topic the entry matches; a feed may allow fewer
    # On-topic entries only:
    lang: str = ""
    # bot.analyse.stories.story_numbers of the title's and the body's figures (plain tuples: they cross a pipe).
    story_numbers: list[tuple[float, str]] = field(default_factory=list)
    # bot.analyse.stories.signature_words(title, text): the story-matching title tokens and entities.
    words: tuple[list[str], list[str], list[str]] | None = None
    # key_figures(text, lang): the figures a brief of it (or a story it joins) lists.
    figures: list[KeyFigure] | None = None


def entry_facts(entry: ParsedEntry, matcher: TopicMatcher) -> EntryFacts:
    # Folded once for both: fold(title + "\n" + text) is the two folded texts joined by "\n" (a line
    # break neither composes with a neighbour nor changes case).
    folded = fold(entry.title), fold(entry.text)
    ident = identify(entry.guid, entry.link, entry.title, entry.text, entry.published, folded=folded)
    topics = matcher.match_folded(folded[0] + "\n" + folded[1])
    if not topics:
        return EntryFacts(ident, topics)
    lang = detect_language(entry.title + "\n" + entry.text)
    # Text planted for automated readers gives no figure (bot.summarise.injection).
    text = strip_planted(entry.text)[0]
    body_numbers = find_numbers(text)  # parsed once: the story's figures and the key figures
    return EntryFacts(ident, topics, lang, story_numbers(find_numbers(entry.title)) + story_numbers(body_numbers),
                      signature_words(entry.title, entry.text),
                      key_figures(text, lang, numbers=body_numbers))


class AnalysedFeed(NamedTuple):
    feed: ParsedFeed
    facts: list[EntryFacts]  # one per entry of `feed`, in order; empty when no topics were given


def analyse_feed(parsed: ParsedFeed, matcher: TopicMatcher | None) -> AnalysedFeed:
    facts = [entry_facts(entry, matcher) for entry in parsed.entries] if matcher is not None else []
    return AnalysedFeed(parsed, facts)
