"""Same story across outlets and languages, decided by cheap signals before any LLM call.

Signals: shared figures (numbers are language-neutral), title similarity (same language),
shared named entities (a small bilingual glossary makes "Commerce Ministry" meet "商务部"),
shared topics, and time proximity. Merging two different stories would hide an alert, so
the rules are conservative: numbers or several entities must agree, not just the topic.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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


def _entity_patterns() -> list[tuple[str, tuple[str, ...], re.Pattern]]:
    out = []
    for canon, names in _GLOSSARY.items():
        alts = []
        for n in names:
            alts.append(re.escape(n) if _CJK.search(n) else r"(?<![\w])" + re.escape(n) + r"(?![\w])")
        out.append((canon, names, re.compile("|".join(alts))))
    return out


_ENTITY_PATTERNS = _entity_patterns()


def entities_in(text: str) -> set[str]:
    norm = _norm(text)
    # A pattern can only match where one of its names occurs literally: the substring test (fast)
    # spares most of the word-boundary regex searches (slow: they cannot skip ahead to a literal).
    found = {canon for canon, names, pat in _ENTITY_PATTERNS
             if any(name in norm for name in names) and pat.search(norm)}
    # Capitalised multi-letter words in English are likely names (companies, people, places).
    for word in re.findall(r"\b[A-Z][a-zA-Z]{3,}\b", text):
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


def make_signature(title: str, text: str, lang: str, topics: list[str], numbers: list[tuple[float, str]],
                   published: datetime | None) -> StorySignature:
    lead = text[:1500]
    return StorySignature(
        lang=lang,
        topics=sorted(topics),
        title_tokens=sorted(title_tokens(title)),
        entities=sorted(entities_in(title + "\n" + lead)),
        numbers=sorted({(round(v, 6), u) for v, u in numbers}),
        published=published.isoformat() if published else None,
    )


def _numbers_shared(a: list[tuple[float, str]], b: list[tuple[float, str]]) -> int:
    shared = 0
    for va, ua in a:
        for vb, ub in b:
            if ua == ub and abs(va - vb) <= 1e-9 * max(abs(va), 1.0):
                shared += 1
                break
    return shared


def similarity(a: StorySignature, b: StorySignature) -> float:
    """0..1 score that two articles report the same story; >= SAME_STORY means merge."""
    if not set(a.topics) & set(b.topics):
        return 0.0
    numbers = _numbers_shared(a.numbers, b.numbers)
    # Entities every story in this domain mentions say nothing about *which* story it is.
    shared_entities = len((set(a.entities) & set(b.entities)) - _GENERIC_ENTITIES)
    title_sim = words_sim = 0.0
    if a.lang == b.lang and a.title_tokens and b.title_tokens:
        ta, tb = set(a.title_tokens), set(b.title_tokens)
        title_sim = _jaccard(ta, tb)
        # Positive evidence needs the words that say *which* story: not its numbers (counted
        # separately) and not the words every headline on this beat shares.
        words_sim = _jaccard({w for w in ta if not w.isdigit()} - _GENERIC_TITLE_WORDS,
                             {w for w in tb if not w.isdigit()} - _GENERIC_TITLE_WORDS)
    if numbers == 0 and a.numbers and b.numbers and title_sim < 0.8:
        # Both carry figures and none agree: a new day's price report or another seizure,
        # not another outlet's version of the same story.
        return 0.0
    score = 0.0
    if numbers >= 2:
        score = max(score, 0.9)
    # One shared figure is common by chance ("25%", "90 days"): it needs the same specific words too.
    if numbers >= 1 and (shared_entities >= 2 or words_sim >= 0.4):
        score = max(score, 0.8)
    if words_sim >= 0.6:
        score = max(score, 0.75)
    if words_sim >= 0.4 and shared_entities >= 3:
        score = max(score, 0.7)
    return score


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


SAME_STORY = 0.7


def _published(sig: StorySignature) -> datetime | None:
    try:
        return datetime.fromisoformat(sig.published) if sig.published else None
    except ValueError:
        return None


class StoryIndex:
    """Recent stories' signatures, indexed by the signals that can make two articles one story.

    A match needs a shared figure, shared title words or shared specific entities, so only
    stories sharing at least one of those are compared — not every story of the last 48 h.
    """

    def __init__(self) -> None:
        self._sigs: dict[str, StorySignature] = {}
        self._by_key: dict[object, set[str]] = {}

    @staticmethod
    def _keys(sig: StorySignature) -> set:
        keys: set = {("n",) + tuple(n) for n in sig.numbers}
        keys |= {("t", tok) for tok in sig.title_tokens}
        keys |= {("e", e) for e in sig.entities if e not in _GENERIC_ENTITIES}
        return keys

    def __contains__(self, story_id: str) -> bool:
        return story_id in self._sigs

    def __len__(self) -> int:
        return len(self._sigs)

    def add(self, story_id: str, sig: StorySignature) -> None:
        if story_id in self._sigs:
            return
        self._sigs[story_id] = sig
        for key in self._keys(sig):
            self._by_key.setdefault(key, set()).add(story_id)

    def evict_published_before(self, cutoff: datetime) -> None:
        old = [sid for sid, sig in self._sigs.items() if (_published(sig) or cutoff) < cutoff]
        for sid in old:
            for key in self._keys(self._sigs.pop(sid)):
                ids = self._by_key.get(key)
                if ids is not None:
                    ids.discard(sid)
                    if not ids:
                        del self._by_key[key]

    def find_same_story(self, sig: StorySignature) -> str | None:
        # similarity() can only reach SAME_STORY with a shared figure or two shared title words
        # (its entity rules also need title overlap), so only those stories are compared.
        by_number: set[str] = set()
        title_hits: dict[str, int] = {}
        for key in self._keys(sig):
            ids = self._by_key.get(key)
            if not ids:
                continue
            if key[0] == "n":
                by_number |= ids
            elif key[0] == "t":
                for sid in ids:
                    title_hits[sid] = title_hits.get(sid, 0) + 1
        ids = by_number | {sid for sid, hits in title_hits.items() if hits >= 2}
        return find_same_story(sig, [(sid, self._sigs[sid]) for sid in sorted(ids)])


def find_same_story(sig: StorySignature, candidates: list[tuple[str, StorySignature]]) -> str | None:
    """The id of the best-matching candidate story, or None."""
    best_id, best = None, 0.0
    mine = _published(sig)
    for story_id, other in candidates:
        theirs = _published(other)
        if mine and theirs and abs(mine - theirs) > STORY_WINDOW:
            continue
        score = similarity(sig, other)
        if score >= SAME_STORY and score > best:
            best_id, best = story_id, score
    return best_id
