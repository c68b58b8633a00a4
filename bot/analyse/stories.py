"""Same story across outlets and languages, decided by cheap signals before any LLM call.

Signals: shared figures (numbers are language-neutral), the names an article gives (a bilingual
glossary makes "Commerce Ministry" meet "商务部" and says what kind of thing each name is), title
similarity (same language), shared topics and time proximity. Merging two different stories would
hide an alert, so the rules are conservative:

- headlines naming different countries, places, goods or companies (and articles naming only
  different countries or goods) are different stories, whatever else they share;
- a shared figure is evidence only together with a shared subject: a name that is not on every
  story of the beat ("25%" and "the White House" are on many);
- articles whose figures all disagree are different stories (the next day's price, another seizure).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Collection, Iterable

from bot.analyse.story_names import (
    CJK_RE,
    GENERIC,
    KIND_OF,
    NAME_TOKENS,
    STOP_WORDS,
    TEXT_CONFLICT_KINDS,
    TITLE_CONFLICT_KINDS,
    entities_in,
    normalise,
)

if TYPE_CHECKING:
    from bot.analyse.numbers import Number

STORY_WINDOW = timedelta(hours=48)

# Headline words every story on this beat uses ("China raises tariffs …", "稀土出口 …").
_GENERIC_TITLE_WORDS = {"china", "chinese", "us", "u", "s", "beijing", "washington", "tariff", "tariffs", "rare",
                        "earth", "earths", "export", "exports", "controls", "control", "trade", "price", "prices",
                        "raises", "cuts", "new", "says", "over", "on", "稀土", "关税", "中国", "美国", "出口",
                        "中美", "管制", "贸易"} | {"@" + e for e in GENERIC}


def title_tokens(title: str) -> set[str]:
    norm = normalise(title)
    if CJK_RE.search(norm):
        chars = [c for c in norm if CJK_RE.match(c)]
        return {a + b for a, b in zip(chars, chars[1:])}  # character bigrams
    return {w for w in re.findall(r"[a-z0-9]+", norm) if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())}


@dataclass
class StorySignature:
    lang: str
    topics: list[str]
    title_tokens: list[str]
    entities: list[str]  # of the title and the start of the body
    # (value, unit) of the article's significant figures; dates and bare small numbers excluded.
    numbers: list[tuple[float, str]]
    published: str | None = None
    title_entities: list[str] = field(default_factory=list)  # glossary names in the title
    # The feed the story's first item came from: another item of that feed is another story.
    feed: str = ""

    def to_dict(self) -> dict:
        return {"lang": self.lang, "topics": self.topics, "title_tokens": self.title_tokens,
                "entities": self.entities, "numbers": [list(n) for n in self.numbers], "published": self.published,
                "title_entities": self.title_entities, "feed": self.feed}

    @classmethod
    def from_dict(cls, d: dict) -> "StorySignature":
        return cls(lang=d.get("lang", ""), topics=d.get("topics", []), title_tokens=d.get("title_tokens", []),
                   entities=d.get("entities", []), numbers=[tuple(n) for n in d.get("numbers", [])],
                   published=d.get("published"), title_entities=d.get("title_entities", []), feed=d.get("feed", ""))


# The kinds of figure that can say which story an article tells (dates and bare numbers cannot).
STORY_NUMBER_KINDS = frozenset({"percent", "money", "quantity", "duration", "count"})


def story_numbers(numbers: Iterable[Number]) -> list[tuple[float, str]]:
    """(value, unit) of the figures among `numbers` (find_numbers of a title or body) that can
    identify a story."""
    out = []
    for n in numbers:
        if n.kind in STORY_NUMBER_KINDS and n.value is not None:
            # Tiny bare counts ("3 items") are too common to identify a story.
            if n.kind == "count" and n.value < 10:
                continue
            out.append((float(n.value), n.unit))
    return out


def signature_words(title: str, text: str) -> tuple[list[str], list[str], list[str]]:
    """(title tokens, entities, title entities) of a signature: the costly part, a pure function of
    the entry's text, so the feed-parser worker works it out (bot.pipeline.facts), not the event loop.

    Capitalised words of the headline are not taken as names: many feeds capitalise every word."""
    in_title = entities_in(title, names=False)
    return sorted(title_tokens(title)), sorted(in_title | entities_in(text[:1500])), sorted(in_title)


def make_signature(title: str, text: str, lang: str, topics: list[str], numbers: list[tuple[float, str]],
                   published: datetime | None, words: tuple[list[str], ...] | None = None,
                   feed: str = "") -> StorySignature:
    """`words`: signature_words(title, text) when already worked out."""
    tokens, entities, in_title = words if words is not None else signature_words(title, text)
    return StorySignature(
        lang=lang,
        topics=sorted(topics),
        title_tokens=list(tokens),
        entities=list(entities),
        numbers=sorted({(round(v, 6), u) for v, u in numbers}),
        published=published.isoformat() if published else None,
        title_entities=list(in_title),
        feed=feed,
    )


_NO_WORDS: frozenset = frozenset()
# Stories naming the same glossary names of the conflicting kinds share one mapping (never written
# to): the glossary is small, so few combinations occur (bounded, as odd feeds could make many).
_KIND_MAPS: dict[tuple, dict[str, frozenset[str]]] = {(): {}}


def _by_kind(entities: Iterable[str], kinds: tuple[str, ...]) -> dict[str, frozenset[str]]:
    key = tuple(sorted(e for e in set(entities) if KIND_OF.get(e) in kinds))
    shared = _KIND_MAPS.get(key)
    if shared is not None:
        return shared
    out: dict[str, set[str]] = {}
    for e in key:
        out.setdefault(KIND_OF[e], set()).add(e)
    found = {k: _compact(v) for k, v in out.items()}
    if len(_KIND_MAPS) < 4096:
        _KIND_MAPS[key] = found
    return found


def _compact(words: set[str] | frozenset[str]) -> frozenset[str]:
    """Interned words (signatures come pickled from the parser worker or as JSON from the store,
    one copy of "tariff" per story otherwise); the empty set shared. For the story index's memory."""
    return frozenset(map(sys.intern, words)) if words else _NO_WORDS


# A beat has few combinations of topics: stories with the same ones share one set (bounded, as a
# misconfigured matcher could make many).
_TOPIC_SETS: dict[frozenset, frozenset] = {}


def _shared_topics(topics: Iterable[str]) -> frozenset[str]:
    found = _compact(frozenset(topics))
    if len(_TOPIC_SETS) < 1024:
        return _TOPIC_SETS.setdefault(found, found)
    return _TOPIC_SETS.get(found, found)


class _Features:
    """What similarity() reads from a signature, as sets built once (a signature never changes):
    scoring a candidate is a few set operations, not list-to-set conversions and date parsing on
    every comparison. The story index keeps each story's as a _Kept."""

    __slots__ = ("lang", "topics", "titles", "words", "title_names", "entities", "title_kinds", "text_kinds",
                 "numbers", "number_set", "number_keys", "published")

    def __init__(self, sig: StorySignature) -> None:
        self.lang = sys.intern(sig.lang)
        self.topics = _shared_topics(sig.topics)
        # A headline's glossary names count as words of it ("@japan" for "Tokyo" and for "日本"), so
        # headlines naming one thing differently still share it.
        names = {"@" + e for e in sig.title_entities}
        self.titles = _compact(frozenset(sig.title_tokens) | names)
        # The words that say *which* story: not its numbers (counted separately), not the words
        # every headline on this beat shares, and each name once (under its canonical id).
        plain = {w for w in sig.title_tokens if not w.isdigit() and (w not in NAME_TOKENS or not names)}
        self.words = _compact((plain | names) - _GENERIC_TITLE_WORDS)
        self.title_names = _compact(frozenset(sig.title_entities) - GENERIC)
        # Entities every story in this domain mentions say nothing about *which* story it is.
        self.entities = _compact(frozenset(sig.entities) - GENERIC)
        self.title_kinds = _by_kind(sig.title_entities, TITLE_CONFLICT_KINDS)
        self.text_kinds = _by_kind(sig.entities, TEXT_CONFLICT_KINDS)
        # Pairs may be lists (JSON): hashable here.
        self.numbers = tuple((value, sys.intern(unit)) for value, unit in sig.numbers)
        self.number_set = frozenset(self.numbers) if self.numbers else _NO_WORDS
        # The index keys of its figures' tolerance windows: looked up by a query, then claimed
        # (`shared_keys`) when the query becomes a new story.
        self.number_keys = {key for value, unit in self.numbers for key in _number_keys(value, unit)}
        self.published = _published(sig)


class _Kept:
    """A story's _Features as the story index keeps them, for thousands of stories: tuples where
    the query's side has sets (a tuple of five words takes a ninth of a set's memory). similarity()
    reads them only through the query's sets (`a.words.intersection(b.words)`), so no set is
    needed on this side."""

    __slots__ = ("lang", "topics", "titles", "words", "title_names", "entities", "title_kinds", "text_kinds",
                 "numbers", "published")

    def __init__(self, feats: _Features) -> None:
        self.lang, self.topics, self.numbers, self.published = feats.lang, feats.topics, feats.numbers, feats.published
        self.title_kinds, self.text_kinds = feats.title_kinds, feats.text_kinds
        # (tuple() of an empty set is the one shared empty tuple.)
        self.titles, self.words = tuple(feats.titles), tuple(feats.words)
        self.title_names, self.entities = tuple(feats.title_names), tuple(feats.entities)


def _same_value(va: float, vb: float) -> bool:
    return abs(va - vb) <= 1e-9 * max(abs(va), 1.0)


def _numbers_shared(mine: tuple[tuple[float, str], ...], other: tuple[tuple[float, str], ...]) -> int:
    """How many of `mine`'s figures `other` shares: same unit, value within tolerance."""
    shared = 0
    for number in mine:
        if number in other:
            shared += 1
            continue
        va, ua = number
        if any(ub == ua and _same_value(va, vb) for vb, ub in other):
            shared += 1
    return shared


def _differ(mine: dict[str, frozenset[str]], other: dict[str, frozenset[str]]) -> bool:
    """Some kind of name both give, with none in common."""
    return any(kind in other and names.isdisjoint(other[kind]) for kind, names in mine.items())


def similarity(a: StorySignature, b: StorySignature) -> float:
    """0..1 score that two articles report the same story; >= SAME_STORY means merge."""
    return _similarity(_Features(a), _Features(b))


def _similarity(a: _Features, b: _Features | _Kept) -> float:
    """`b`'s collections are only iterated: a stored story's are tuples."""
    if a.topics.isdisjoint(b.topics) or _differ(a.title_kinds, b.title_kinds) or _differ(a.text_kinds, b.text_kinds):
        return 0.0
    numbers = _numbers_shared(a.numbers, b.numbers)
    subjects = len(a.entities.intersection(b.entities))
    # A subject one headline names and the other article mentions: what the story is about.
    headline = not (a.title_names.isdisjoint(b.entities) and a.entities.isdisjoint(b.title_names))
    words_sim = _jaccard(a.words, b.words) if a.lang == b.lang else 0.0
    if numbers == 0 and a.numbers and b.numbers:
        # Both carry figures and none agree: a new day's price report or another seizure,
        # not another outlet's version of the same story, however alike the headlines.
        return 0.0
    score = 0.0
    # A shared figure says which story only with a shared subject: "25%" is on many stories.
    if numbers >= 2 and subjects >= 1:
        score = max(score, 0.9)
    if numbers >= 1 and headline and (subjects >= 2 or words_sim >= WORDS_SIM):
        score = max(score, 0.8)
    if words_sim >= 0.6:
        score = max(score, 0.75)
    # Specific headline words and several names in common, one of them in both headlines (a body's
    # stock sentences name the same places in many stories).
    if words_sim >= WORDS_SIM and subjects >= 3 and not a.title_names.isdisjoint(b.title_names):
        score = max(score, 0.7)
    return score


def _jaccard(a: frozenset, b: Collection) -> float:
    """Of two collections without repeats."""
    if not a or not b:
        return 0.0
    shared = len(a.intersection(b))
    return shared / (len(a) + len(b) - shared)


SAME_STORY = 0.7
# The least specific-word similarity that, with a shared figure or three shared entities, makes one
# story.
WORDS_SIM = 0.4


def _published(sig: StorySignature) -> datetime | None:
    try:
        return datetime.fromisoformat(sig.published) if sig.published else None
    except ValueError:
        return None


def _number_bucket(value: float) -> float:
    """A coarse, monotone rounding of a figure (8 significant digits; 7 decimals below 1).

    Every bucket is wider than the tolerance window of `_same_value` (3e-9 relative with margin),
    so the values within tolerance of `v` lie in the buckets of its window's two ends."""
    return float(f"{value:.7e}") if abs(value) >= 1.0 else round(value, 7)


def _number_keys(value: float, unit: str) -> set[tuple[str, float]]:
    """The index keys under which the figures within similarity()'s tolerance of `value` are filed."""
    if not math.isfinite(value):
        return {(unit, value)}  # an absurdly long digit string parses as inf: only itself is equal
    margin = 1.5e-9 * max(abs(value), 1.0)
    return {(unit, _number_bucket(value - margin)), (unit, _number_bucket(value + margin))}


class StoryIndex:
    """Recent stories' signatures, indexed by their figures and specific title words.

    A story is compared with the query only when it shares a figure (exactly) or two title tokens
    with it, and the best match is taken in id order, as `find_same_story` does over those. Of
    them, similarity() can reach SAME_STORY only for a story with a figure within tolerance of
    one of the query's, or with enough of its specific title words (words_sim >= WORDS_SIM); the
    index looks up just those two kinds, so a lookup costs about the number of plausible matches
    rather than the number of recent stories.
    """

    def __init__(self) -> None:
        self._features: dict[str, _Kept] = {}
        # Postings: most keys belong to one story, filed as its id alone (see _file).
        self._by_number: dict[tuple[str, float], str | set[str]] = {}
        # Title words by language (only articles in one language are compared by their words), and
        # by whether the story has figures: a query with figures matches on words alone only the
        # stories without any (figures that all disagree mean two stories).
        self._by_word: dict[tuple[str, bool], dict[str, str | set[str]]] = {}
        # The feeds each story has items from: another item of one of them is another story.
        self._feeds: dict[str, tuple[str, ...]] = {}
        self._by_feed: dict[str, set[str]] = {}
        # The last query's features: a story is added right after its signature found no match.
        self._last: tuple[StorySignature, _Features] | None = None

    def _postings(self, feats: _Features | _Kept):
        for value, unit in feats.numbers:
            yield self._by_number, (unit, _number_bucket(value))
        words = self._by_word.setdefault((feats.lang, bool(feats.numbers)), {})
        for word in feats.words:
            yield words, word

    def __contains__(self, story_id: str) -> bool:
        return story_id in self._features

    def __len__(self) -> int:
        return len(self._features)

    def language_of(self, story_id: str) -> str | None:
        """The language of the story's first item (None: not a story in the index)."""
        feats = self._features.get(story_id)
        return feats.lang if feats is not None else None

    def add(self, story_id: str, sig: StorySignature) -> None:
        if story_id in self._features:
            return
        feats = _Kept(self._last[1] if self._last is not None and self._last[0] is sig else _Features(sig))
        self._features[story_id] = feats
        self._feeds[story_id] = ()
        self.joined(story_id, sig.feed)
        for postings, key in self._postings(feats):
            _file(postings, key, story_id)

    def joined(self, story_id: str, feed: str) -> None:
        """An item of `feed` joined the story: the feed's other items are other stories."""
        feeds = self._feeds.get(story_id)
        if feeds is not None and feed and feed not in feeds:
            self._feeds[story_id] = (*feeds, sys.intern(feed))
            self._by_feed.setdefault(feed, set()).add(story_id)

    def discard(self, story_id: str) -> None:
        feats = self._features.pop(story_id, None)
        if feats is None:
            return
        for feed in self._feeds.pop(story_id):
            ids = self._by_feed[feed]
            ids.discard(story_id)
            if not ids:
                del self._by_feed[feed]
        for postings, key in self._postings(feats):
            _unfile(postings, key, story_id)

    def evict_published_before(self, cutoff: datetime) -> None:
        for sid in [sid for sid, feats in self._features.items() if (feats.published or cutoff) < cutoff]:
            self.discard(sid)

    def _sharing_words(self, mine: _Features, least: int, with_numbers: bool) -> set[str]:
        """The stories with figures (`with_numbers`) or without sharing at least `least` of `mine`'s
        specific words, and some sharing fewer."""
        words = self._by_word.get((mine.lang, with_numbers))
        if not words:
            return set()
        if least == 1:
            return set().union(*(_ids(words.get(w)) for w in mine.words))
        # A story sharing `least` of the query's n words misses at most n - least of them, so it has
        # two of any n - least + 2 of them: of the pairs of the rarest that many, it is in the
        # postings of both words of one. Common words ("magnet", "tonnes") are then never read.
        rarest = sorted((_ids(words.get(w)) for w in mine.words), key=len)[:len(mine.words) - least + 2]
        found: set[str] = set()
        for i, first in enumerate(rarest):
            for second in rarest[i + 1:]:
                if isinstance(first, set):  # then so is `second`, no shorter
                    found |= first & second
                else:
                    found.update(sid for sid in first if sid in second)
        return found

    def candidates(self, sig: StorySignature, feats: _Features | None = None) -> list[str]:
        """Sorted ids of the stories to score against `sig`: every story sharing a figure or two title
        tokens with it that similarity() could score SAME_STORY or more, and few others; none with an
        item of `sig`'s feed (a feed does not publish one story twice under another GUID, link and
        title; the same item is caught by identity before matching)."""
        mine = feats or _Features(sig)
        stories = self._features
        found: set[str] = set()
        for key in mine.number_keys:
            found.update(_ids(self._by_number.get(key)))
        found -= self._by_feed.get(sig.feed, set())
        seen = found | self._by_feed.get(sig.feed, set())
        # Without a figure within tolerance, similarity() needs the same language, words_sim >=
        # WORDS_SIM and figures on one side at most (figures that all disagree mean two stories).
        least_words = _least_overlap(len(mine.words), WORDS_SIM)
        pool = self._sharing_words(mine, least_words, with_numbers=False)
        if not mine.numbers:
            pool |= self._sharing_words(mine, least_words, with_numbers=True)
        pool -= seen
        found.update(sid for sid in pool if len(mine.words.intersection(stories[sid].words)) >= least_words)
        return sorted(sid for sid in found if not mine.number_set.isdisjoint(stories[sid].numbers)
                      or len(mine.titles.intersection(stories[sid].titles)) >= 2)

    def find_same_story(self, sig: StorySignature) -> str | None:
        mine = _Features(sig)
        self._last = (sig, mine)
        return _best_match(mine, [(sid, self._features[sid]) for sid in self.candidates(sig, mine)])

    def shared_keys(self, sig: StorySignature) -> set[str]:
        """Keys that every story similarity() could score SAME_STORY with `sig` shares with it: the
        buckets of each figure's tolerance window, and each specific title word in its language.
        Workers deciding stories at once claim these. (The last query's features serve when `sig`
        is its signature, as in `add`.)"""
        feats = self._last[1] if self._last is not None and self._last[0] is sig else _Features(sig)
        keys = {f"#{unit}:{bucket!r}" for unit, bucket in feats.number_keys}
        return keys | {f"{feats.lang}:{word}" for word in feats.words}


def _file(postings: dict, key, story_id: str) -> None:
    """File the story under `key`: its id alone while it is the key's only story (most title words
    and figures belong to one story; a set per key took most of the index's memory)."""
    ids = postings.get(key)
    if ids is None:
        postings[key] = story_id
    elif isinstance(ids, set):
        ids.add(story_id)
    elif ids != story_id:
        postings[key] = {ids, story_id}


def _unfile(postings: dict, key, story_id: str) -> None:
    ids = postings.get(key)
    if isinstance(ids, set):
        ids.discard(story_id)
        if len(ids) == 1:
            postings[key] = next(iter(ids))
    elif ids == story_id:
        del postings[key]


def _ids(posting: str | set[str] | None) -> Collection[str]:
    """The story ids filed under a key."""
    if posting is None:
        return ()
    return (posting,) if isinstance(posting, str) else posting


def _least_overlap(size: int, jaccard: float) -> int:
    """The fewest shared elements a set of `size` needs with another to reach `jaccard` with it
    (|A ∩ B| >= jaccard * |A ∪ B| >= jaccard * |A|), never more than the exact bound."""
    return max(1, math.ceil(jaccard * size - 1e-9))


def find_same_story(sig: StorySignature, candidates: list[tuple[str, StorySignature]]) -> str | None:
    """The id of the best-matching candidate story, or None."""
    mine = _Features(sig)
    # Stories on other topics score 0: not worth building their features.
    return _best_match(mine, [(story_id, _Features(other)) for story_id, other in candidates
                              if not mine.topics.isdisjoint(other.topics)
                              and not (sig.feed and other.feed == sig.feed)])


def _best_match(mine: _Features, candidates: list[tuple[str, _Features | _Kept]]) -> str | None:
    """The first candidate with the highest score >= SAME_STORY within the story window."""
    best_id, best = None, 0.0
    for story_id, other in candidates:
        if mine.published and other.published and abs(mine.published - other.published) > STORY_WINDOW:
            continue
        score = _similarity(mine, other)
        if score >= SAME_STORY and score > best:
            best_id, best = story_id, score
    return best_id
