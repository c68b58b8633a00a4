"""Same story across outlets and languages, decided by cheap signals before any LLM call.

Signals: shared figures (numbers are language-neutral), title similarity (same language),
shared named entities (a small bilingual glossary makes "Commerce Ministry" meet "商务部"),
shared topics, and time proximity. Merging two different stories would hide an alert, so
the rules are conservative: numbers or several entities must agree, not just the topic.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from bot.analyse.numbers import Number

STORY_WINDOW = timedelta(hours=48)

# Canonical entity ids for names that appear in both languages in this domain.
_GLOSSARY: dict[str, tuple[str, ...]] = {
    "china": ("china", "chinese", "beijing", "中国", "中方", "北京"),
    "us": ("united states", "u.s.", "america", "american", "washington", "美国", "美方", "华盛顿"),
    "eu": ("european union", "eu", "brussels", "欧盟", "布鲁塞尔"),
    "japan": ("japan", "japanese", "日本"),
    "mofcom": ("commerce ministry", "ministry of commerce", "mofcom", "商务部"),
    "customs": ("customs", "gacc", "海关", "海关总署"),
    "ustr": ("ustr", "trade representative", "贸易代表"),
    "treasury": ("treasury", "财政部"),
    "white-house": ("white house", "白宫"),
    "rare-earth": ("rare earth", "rare-earth", "rare earths", "稀土"),
    "antimony": ("antimony", "锑"),
    "gallium": ("gallium", "镓"),
    "germanium": ("germanium", "锗"),
    "graphite": ("graphite", "石墨"),
    "neodymium": ("neodymium", "ndpr", "钕", "镨钕"),
    "dysprosium": ("dysprosium", "镝"),
    "terbium": ("terbium", "铽"),
    "lynas": ("lynas", "莱纳斯"),
    "mp-materials": ("mp materials", "mp材料"),
    "northern-rare-earth": ("china northern rare earth", "northern rare earth", "北方稀土"),
    "china-rare-earth-group": ("china rare earth group", "中国稀土集团", "中国稀土"),
    "tariff": ("tariff", "tariffs", "关税"),
    "export-control": ("export control", "export controls", "export licence", "export licences", "export license",
                       "export licensing", "出口管制", "出口许可"),
    "geneva": ("geneva", "日内瓦"),
    "london": ("london", "伦敦"),
    "trump": ("trump", "特朗普"),
    "bessent": ("bessent", "贝森特"),
    "hong-kong": ("hong kong", "香港", "港股"),
    "guangdong": ("guangdong", "广东"),
    "baotou": ("baotou", "包头"),
    "inner-mongolia": ("inner mongolia", "内蒙古"),
    "jiangxi": ("jiangxi", "江西"),
    "myanmar": ("myanmar", "缅甸"),
    "australia": ("australia", "australian", "澳大利亚"),
    "canada": ("canada", "canadian", "ottawa", "加拿大"),
    "smuggling": ("smuggled", "smuggling", "走私"),
}

_GENERIC_ENTITIES = {"china", "us", "rare-earth", "tariff", "export-control", "name:china", "name:chinese",
                     "name:beijing", "name:washington", "name:tariffs", "name:rare"}

# Headline words every story on this beat uses ("China raises tariffs …", "稀土出口 …").
_GENERIC_TITLE_WORDS = {"china", "chinese", "us", "u", "s", "beijing", "washington", "tariff", "tariffs", "rare",
                        "earth", "earths", "export", "exports", "controls", "control", "trade", "price", "prices",
                        "raises", "cuts", "new", "says", "over", "on", "稀土", "关税", "中国", "美国", "出口",
                        "中美", "管制", "贸易"}

_CJK = re.compile(r"[\u4e00-\u9fff]")
_STOP = set("the a an of to in on for and or with by as at from is are was were be been has have had "
            "its it this that after over under new says said will would could may might amid".split())


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _entity_patterns() -> list[tuple[str, tuple[str, ...], frozenset[str], re.Pattern]]:
    """(canonical id, CJK names, first words of the other names, pattern of all names) per entity."""
    out = []
    for canon, names in _GLOSSARY.items():
        alts = []
        for n in names:
            # "(?<![\w])name" written as "name(?<![\w]name)": the same matches, but a pattern that
            # starts with a literal lets the regex engine skip ahead to it.
            alts.append(re.escape(n) if _CJK.search(n)
                        else re.escape(n) + r"(?<![\w]" + re.escape(n) + r")(?![\w])")
        cjk = tuple(n for n in names if _CJK.search(n))
        first_words = frozenset(_WORD.match(n).group() for n in names if not _CJK.search(n))
        out.append((canon, cjk, first_words, re.compile("|".join(alts))))
    return out


_WORD = re.compile(r"\w+")
# r"\b[A-Z][a-zA-Z]{3,}\b" with the word-start test after the capital (the same matches): a
# character class first lets the regex engine skip ahead instead of testing \b everywhere.
_CAPITALISED = re.compile(r"[A-Z](?<!\w[A-Z])[a-zA-Z]{3,}\b")
_ENTITY_PATTERNS = _entity_patterns()


def entities_in(text: str) -> set[str]:
    norm = _norm(text)
    # A CJK name matches as a plain substring. Any other name matches only between non-word
    # characters, so its first word is then a whole word of the text: a set lookup (fast) spares
    # most of the word-boundary regex searches (slow: they cannot skip ahead to a literal).
    words = set(_WORD.findall(norm))
    has_cjk = _CJK.search(norm) is not None
    found = {canon for canon, cjk, first_words, pat in _ENTITY_PATTERNS
             if has_cjk and any(name in norm for name in cjk)
             or (not words.isdisjoint(first_words) and pat.search(norm))}
    # Capitalised multi-letter words in English are likely names (companies, people, places).
    for word in _CAPITALISED.findall(text):
        if word.lower() not in _STOP:
            found.add("name:" + word.lower())
    return found


def title_tokens(title: str) -> set[str]:
    norm = _norm(title)
    if _CJK.search(norm):
        chars = [c for c in norm if _CJK.match(c)]
        return {a + b for a, b in zip(chars, chars[1:])}  # character bigrams
    return {w for w in re.findall(r"[a-z0-9]+", norm) if w not in _STOP and (len(w) > 1 or w.isdigit())}


@dataclass
class StorySignature:
    lang: str
    topics: list[str]
    title_tokens: list[str]
    entities: list[str]
    # (value, unit) of the article's significant figures; dates and bare small numbers excluded.
    numbers: list[tuple[float, str]]
    published: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"lang": self.lang, "topics": self.topics, "title_tokens": self.title_tokens,
                "entities": self.entities, "numbers": [list(n) for n in self.numbers], "published": self.published}

    @classmethod
    def from_dict(cls, d: dict) -> "StorySignature":
        return cls(lang=d.get("lang", ""), topics=d.get("topics", []), title_tokens=d.get("title_tokens", []),
                   entities=d.get("entities", []), numbers=[tuple(n) for n in d.get("numbers", [])],
                   published=d.get("published"))


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


def signature_words(title: str, text: str) -> tuple[list[str], list[str]]:
    """(title tokens, entities) of a signature: the costly part, a pure function of the entry's
    text, so the feed-parser worker works it out (bot.pipeline.facts) rather than the event loop."""
    return sorted(title_tokens(title)), sorted(entities_in(title + "\n" + text[:1500]))


def make_signature(title: str, text: str, lang: str, topics: list[str], numbers: list[tuple[float, str]],
                   published: datetime | None,
                   words: tuple[list[str], list[str]] | None = None) -> StorySignature:
    """`words`: signature_words(title, text) when already worked out."""
    tokens, entities = words if words is not None else signature_words(title, text)
    return StorySignature(
        lang=lang,
        topics=sorted(topics),
        title_tokens=list(tokens),
        entities=list(entities),
        numbers=sorted({(round(v, 6), u) for v, u in numbers}),
        published=published.isoformat() if published else None,
    )


class _Features:
    """What similarity() reads from a signature, as sets built once (a signature never changes).

    An index keeps one per story, so scoring a candidate is a few set operations, not list-to-set
    conversions and date parsing on every comparison."""

    __slots__ = ("lang", "topics", "titles", "words", "entities", "numbers", "number_set", "by_unit",
                 "published")

    def __init__(self, sig: StorySignature) -> None:
        self.lang = sig.lang
        self.topics = frozenset(sig.topics)
        self.titles = frozenset(sig.title_tokens)
        # The words that say *which* story: not its numbers (counted separately) and not the words
        # every headline on this beat shares.
        self.words = frozenset(w for w in self.titles if not w.isdigit()) - _GENERIC_TITLE_WORDS
        # Entities every story in this domain mentions say nothing about *which* story it is.
        self.entities = frozenset(sig.entities) - _GENERIC_ENTITIES
        self.numbers = [(value, unit) for value, unit in sig.numbers]  # pairs may be lists: hashable here
        self.number_set = frozenset(self.numbers)
        by_unit: dict[str, list[float]] = {}
        for value, unit in self.numbers:
            by_unit.setdefault(unit, []).append(value)
        self.by_unit = by_unit
        self.published = _published(sig)


def _same_value(va: float, vb: float) -> bool:
    return abs(va - vb) <= 1e-9 * max(abs(va), 1.0)


def _features_numbers_shared(a: _Features, b: _Features) -> int:
    """How many of a's figures b shares (same unit, value within tolerance): an exact hit is a set
    lookup; only a miss compares values, and only those of b in the same unit."""
    shared = 0
    number_set, by_unit = b.number_set, b.by_unit
    for number in a.numbers:
        if number in number_set:
            shared += 1
            continue
        va, ua = number
        values = by_unit.get(ua)
        if values and any(_same_value(va, vb) for vb in values):
            shared += 1
    return shared


def similarity(a: StorySignature, b: StorySignature) -> float:
    """0..1 score that two articles report the same story; >= SAME_STORY means merge."""
    return _similarity(_Features(a), _Features(b))


def _similarity(a: _Features, b: _Features) -> float:
    if a.topics.isdisjoint(b.topics):
        return 0.0
    numbers = _features_numbers_shared(a, b)
    shared_entities = len(a.entities & b.entities)
    title_sim = words_sim = 0.0
    if a.lang == b.lang and a.titles and b.titles:
        title_sim = _jaccard(a.titles, b.titles)
        words_sim = _jaccard(a.words, b.words)
    if numbers == 0 and a.numbers and b.numbers and title_sim < TITLE_SIM:
        # Both carry figures and none agree: a new day's price report or another seizure,
        # not another outlet's version of the same story.
        return 0.0
    score = 0.0
    if numbers >= 2:
        score = max(score, 0.9)
    # One shared figure is common by chance ("25%", "90 days"): it needs the same specific words too.
    if numbers >= 1 and (shared_entities >= 2 or words_sim >= WORDS_SIM):
        score = max(score, 0.8)
    if words_sim >= 0.6:
        score = max(score, 0.75)
    if words_sim >= WORDS_SIM and shared_entities >= 3:
        score = max(score, 0.7)
    return score


def _jaccard(a: set | frozenset, b: set | frozenset) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


SAME_STORY = 0.7
# The least specific-word similarity that, with a shared figure or three shared entities, makes one
# story; and the least whole-title similarity that lets articles with disagreeing figures be one.
WORDS_SIM = 0.4
TITLE_SIM = 0.8


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
        self._features: dict[str, _Features] = {}
        self._by_number: dict[tuple[str, float], set[str]] = {}
        self._by_word: dict[str, set[str]] = {}

    def _postings(self, feats: _Features):
        for value, unit in feats.numbers:
            yield self._by_number, (unit, _number_bucket(value))
        for word in feats.words:
            yield self._by_word, word

    def __contains__(self, story_id: str) -> bool:
        return story_id in self._features

    def __len__(self) -> int:
        return len(self._features)

    def add(self, story_id: str, sig: StorySignature) -> None:
        if story_id in self._features:
            return
        feats = self._features[story_id] = _Features(sig)
        for postings, key in self._postings(feats):
            postings.setdefault(key, set()).add(story_id)

    def discard(self, story_id: str) -> None:
        feats = self._features.pop(story_id, None)
        if feats is None:
            return
        for postings, key in self._postings(feats):
            ids = postings.get(key)
            if ids is not None:
                ids.discard(story_id)
                if not ids:
                    del postings[key]

    def evict_published_before(self, cutoff: datetime) -> None:
        for sid in [sid for sid, feats in self._features.items() if (feats.published or cutoff) < cutoff]:
            self.discard(sid)

    def _sharing_words(self, mine: _Features, least: int) -> set[str]:
        """The stories sharing at least `least` of `mine`'s specific words, and some sharing fewer."""
        if least == 1:
            return set().union(*(self._by_word.get(w, ()) for w in mine.words))
        # A story sharing `least` of the query's n words misses at most n - least of them, so it has
        # two of any n - least + 2 of them: of the pairs of the rarest that many, it is in the
        # postings of both words of one. Common words ("magnet", "tonnes") are then never read.
        rarest = sorted((self._by_word.get(w, set()) for w in mine.words), key=len)[:len(mine.words) - least + 2]
        found: set[str] = set()
        for i, first in enumerate(rarest):
            for second in rarest[i + 1:]:
                found |= first & second
        return found

    def candidates(self, sig: StorySignature, feats: _Features | None = None) -> list[str]:
        """Sorted ids of the stories to score against `sig`: every story sharing a figure or two title
        tokens with it that similarity() could score SAME_STORY or more, and few others."""
        mine = feats or _Features(sig)
        stories = self._features
        found: set[str] = set()
        for value, unit in mine.numbers:
            for key in _number_keys(value, unit):
                found |= self._by_number.get(key, set())
        # Without a figure within tolerance, similarity() needs the same language, words_sim >=
        # WORDS_SIM and, when both carry figures (none agreeing), title_sim >= TITLE_SIM.
        least_words = _least_overlap(len(mine.words), WORDS_SIM)
        least_titles = _least_overlap(len(mine.titles), TITLE_SIM)
        for sid in self._sharing_words(mine, least_words) - found:
            other = stories[sid]
            if other.lang == mine.lang and len(mine.words & other.words) >= least_words \
                    and (not (mine.numbers and other.numbers) or len(mine.titles & other.titles) >= least_titles):
                found.add(sid)
        return sorted(sid for sid in found if not mine.number_set.isdisjoint(stories[sid].number_set)
                      or len(mine.titles & stories[sid].titles) >= 2)

    def find_same_story(self, sig: StorySignature) -> str | None:
        mine = _Features(sig)
        return _best_match(mine, [(sid, self._features[sid]) for sid in self.candidates(sig, mine)])


def _least_overlap(size: int, jaccard: float) -> int:
    """The fewest shared elements a set of `size` needs with another to reach `jaccard` with it
    (|A ∩ B| >= jaccard * |A ∪ B| >= jaccard * |A|), never more than the exact bound."""
    return max(1, math.ceil(jaccard * size - 1e-9))


def find_same_story(sig: StorySignature, candidates: list[tuple[str, StorySignature]]) -> str | None:
    """The id of the best-matching candidate story, or None."""
    mine = _Features(sig)
    # Stories on other topics score 0: not worth building their features.
    return _best_match(mine, [(story_id, _Features(other)) for story_id, other in candidates
                              if not mine.topics.isdisjoint(other.topics)])


def _best_match(mine: _Features, candidates: list[tuple[str, _Features]]) -> str | None:
    """The first candidate with the highest score >= SAME_STORY within the story window."""
    best_id, best = None, 0.0
    for story_id, other in candidates:
        if mine.published and other.published and abs(mine.published - other.published) > STORY_WINDOW:
            continue
        score = _similarity(mine, other)
        if score >= SAME_STORY and score > best:
            best_id, best = story_id, score
    return best_id
