"""Briefs (stories): the stored brief documents, their topics and sources, and the queries
`/brief` and the digest ask of them."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, func, insert, select, update

from bot.models import Brief, Figure, Source, SourceText
from bot.store import schema as t
from bot.store.engine import StoreEngine
from bot.store.items import ItemRecord


@dataclass
class NewBrief:
    """A new story: its brief, the entry it comes from, where to deliver it, its signature."""
    brief: Brief
    item: ItemRecord
    targets: list[str]
    signature: dict | None = None
    language: str | None = None

    def source_text(self) -> SourceText | None:
        """The brief's text in its item's language when copied from the item (an extractive brief):
        what that item fills in should its story turn out to be another worker's."""
        brief = self.brief
        if brief.mode != "extractive" or self.language not in brief.title:
            return None
        return SourceText(self.language, brief.title[self.language], brief.summary[self.language],
                          brief.note.get(self.language, ""))


@dataclass
class StoryJoin:
    """An entry joining a story (stored, or new in the same write) with the topics and figures it
    adds, and its own text in its language (`text`: it fills that language where the story has only
    a stand-in, in the write that adds the entry; None when it cannot)."""
    brief_id: str
    item: ItemRecord
    source: Source
    figures: list[Figure] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    text: SourceText | None = None


def search_text(brief: Brief) -> str:
    parts = list(brief.title.values()) + list(brief.summary.values())
    parts += [f.text for f in brief.figures] + [s.title for s in brief.sources]
    return " ".join(parts).lower()


def source_row(brief_id: str, source: Source, now: datetime) -> dict:
    return dict(brief_id=brief_id, url=source.url, feed=source.feed, title=source.title, published=source.published,
                added=now)


# Far above what the command grammar lets through, far below SQLite's limits (an expression tree
# 1,000 deep, a LIKE pattern of 50,000 bytes): a caller past them gets a ValueError, never a query
# SQLite refuses.
SEARCH_MAX_WORDS = 64
SEARCH_MAX_WORD_CHARS = 1000


def _check_search_words(words: list[str]) -> None:
    if len(words) > SEARCH_MAX_WORDS:
        raise ValueError(f"search takes at most {SEARCH_MAX_WORDS} words, got {len(words)}")
    for word in words:
        if len(word) > SEARCH_MAX_WORD_CHARS:
            raise ValueError(f"search words have at most {SEARCH_MAX_WORD_CHARS} characters")
        if "\x00" in word or any("\ud800" <= ch <= "\udfff" for ch in word):
            # SQLite would cut the pattern at NUL (matching everything) or fail to encode a surrogate.
            raise ValueError("search words must not contain NUL or undecodable bytes")


_b = t.briefs.c
# Ids per IN (…) list when reading signatures: well under every driver's bound-parameter limit.
_SIGNATURES_PER_READ = 500
INSERT_BRIEF = insert(t.briefs)
# Locked until commit (PostgreSQL: FOR UPDATE), in id order so every worker locks in one order.
BRIEFS_TO_JOIN = (select(_b.id, _b.doc).where(_b.id.in_(bindparam("ids", expanding=True)))
                  .order_by(_b.id).with_for_update())
UPDATE_BRIEF_DOC = update(t.briefs).where(_b.id == bindparam("story_id"))


class BriefsStore(StoreEngine):
    def get_brief(self, brief_id: str) -> Brief | None:
        with self.engine.connect() as c:
            row = c.execute(select(_b.doc).where(_b.id == brief_id)).first()
        return Brief.model_validate(row.doc) if row else None

    def latest_briefs(self, topic: str | None, limit: int = 5) -> list[Brief]:
        with self.engine.connect() as c:
            if topic:
                q = (select(_b.doc).join(t.brief_topics, t.brief_topics.c.brief_id == _b.id)
                     .where(t.brief_topics.c.topic == topic)
                     .order_by(t.brief_topics.c.created.desc()).limit(limit))
            else:
                q = select(_b.doc).order_by(_b.created.desc()).limit(limit)
            rows = c.execute(q).all()
        return [Brief.model_validate(r.doc) for r in rows]

    def search_briefs(self, words: list[str], limit: int = 5) -> list[Brief]:
        """Briefs containing every word (case-insensitive, `%` and `_` literal), newest first."""
        words = list(dict.fromkeys(w.lower() for w in words if w.strip()))
        if not words:
            return []
        _check_search_words(words)
        conds = [_b.search_text.contains(w, autoescape=True) for w in words]
        with self.engine.connect() as c:
            rows = c.execute(select(_b.doc).where(and_(*conds)).order_by(_b.created.desc()).limit(limit)).all()
        return [Brief.model_validate(r.doc) for r in rows]

    def briefs_between(self, start: datetime, end: datetime, topics: list[str] | None = None) -> list[Brief]:
        """Briefs created or updated within [start, end), optionally restricted to topics."""
        with self.engine.connect() as c:
            q = select(_b.doc).where(_b.updated >= start, _b.created < end)
            if topics is not None:
                sub = select(t.brief_topics.c.brief_id).where(t.brief_topics.c.topic.in_(topics))
                q = q.where(_b.id.in_(sub))
            rows = c.execute(q.order_by(_b.created.desc())).all()
        return [Brief.model_validate(r.doc) for r in rows]

    def story_candidates(self, since: datetime, limit: int | None = 500,
                         known: Container[str] = ()) -> list[tuple[str, dict, str | None]]:
        """(brief id, signature, language) of recent stories, for cross-outlet matching, leaving out
        the ids in `known`: a worker re-reading the last minutes reads and decodes only the
        signatures it does not hold yet (during a cold poll that is thousands a read)."""
        q = select(_b.id).where(_b.created >= since).order_by(_b.created.desc())
        with self.engine.connect() as c:
            ids = [i for i in c.execute(q.limit(limit) if limit else q).scalars() if i not in known]
            rows = []
            for start in range(0, len(ids), _SIGNATURES_PER_READ):
                chunk = ids[start:start + _SIGNATURES_PER_READ]
                rows += c.execute(select(_b.id, _b.signature, _b.language).where(_b.id.in_(chunk))).all()
        order = {story_id: n for n, story_id in enumerate(ids)}
        rows.sort(key=lambda r: order[r.id])
        return [(r.id, r.signature or {}, r.language) for r in rows]

    def count_briefs(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(t.briefs)).scalar_one()
