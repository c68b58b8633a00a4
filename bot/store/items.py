"""Items: every entry ever seen, relevant or not, so nothing is briefed twice across restarts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import bindparam, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.store import schema as t
from bot.store.engine import StoreEngine


@dataclass
class ItemRecord:
    feed: str
    item_key: str
    guid: str | None
    link: str | None
    link_key: str | None
    content_key: str | None
    title: str | None
    published: datetime | None
    status: str
    topics: list[str]
    brief_id: str | None = None


def item_row(rec: ItemRecord, now: datetime) -> dict:
    return dict(feed=rec.feed, item_key=rec.item_key, guid=rec.guid, link=rec.link, link_key=rec.link_key,
                content_key=rec.content_key, title=rec.title, published=rec.published, seen_at=now,
                status=rec.status, topics=rec.topics, brief_id=rec.brief_id)


_i = t.items.c
INSERT_ITEM = insert(t.items)
_KNOWN_ITEMS = select(_i.item_key, _i.link_key, _i.content_key).where(
    _i.feed == bindparam("feed_name"),
    or_(_i.item_key.in_(bindparam("item_keys", expanding=True)),
        _i.link_key.in_(bindparam("link_keys", expanding=True)),
        _i.content_key.in_(bindparam("content_keys", expanding=True))))


class ItemsStore(StoreEngine):
    def known_item_keys(self, feed: str, idents: Iterable) -> set[str]:
        """Which of these identities (bot.analyse.identity.ItemIdentity) a feed has seen: matching item, link or
        content keys, in one query (GUID churn is caught through the link and content keys)."""
        idents = list(idents)
        if not idents:
            return set()
        params = {"feed_name": feed,
                  "item_keys": [i.item_key for i in idents],
                  "link_keys": [i.link_key for i in idents if i.link_key],
                  "content_keys": [i.content_key for i in idents if i.content_key]}
        with self.engine.connect() as c:
            rows = c.execute(_KNOWN_ITEMS, params).all()
        return {key for row in rows for key in row if key}

    def _insert_quiet_items(self, c: Connection, records: list[ItemRecord], now: datetime) -> Counter:
        """Record entries that produce no brief, skipping any another worker recorded first;
        returns the rows really inserted, per feed."""
        added: Counter = Counter()
        stmt = self._insert_ignoring_stmts[t.items.name]
        if stmt is None:  # no ON CONFLICT: a savepoint per entry
            for rec in records:
                try:
                    with c.begin_nested():
                        c.execute(INSERT_ITEM, item_row(rec, now))
                    added[rec.feed] += 1
                except IntegrityError:
                    pass  # already recorded by a concurrent worker
            return added
        if self.engine.dialect.name == "sqlite":
            # pysqlite's executemany counts the rows it inserted (a skipped duplicate counts 0). Cheaper
            # than RETURNING, which makes SQLAlchemy render (and SQLite compile) a new multi-row
            # statement for every batch.
            by_feed: dict[str, list[ItemRecord]] = {}
            for rec in records:
                by_feed.setdefault(rec.feed, []).append(rec)
            for feed, recs in by_feed.items():
                added[feed] += c.execute(stmt, [item_row(rec, now) for rec in recs]).rowcount
            return +added  # (drops zero counts, as the RETURNING form does)
        # RETURNING says which rows went in: executemany's rowcount is -1 on PostgreSQL, where
        # SQLAlchemy batches the rows into one statement.
        added.update(row.feed for row in c.execute(stmt.returning(_i.feed), [item_row(rec, now) for rec in records]))
        return added
