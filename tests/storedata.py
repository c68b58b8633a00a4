"""Seeding a store and reading its rows back in tests, through the store's public write and plain
SQL reads (so no production method exists only for tests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from bot.models import Brief
from bot.store import ItemRecord, NewBrief, PollWrites, Store
from bot.store import schema as t


def save_brief(store: Store, brief: Brief, item: ItemRecord, targets: list[str] | tuple = (),
               signature: dict | None = None, language: str | None = None, now: datetime | None = None) -> bool:
    """Store a new story as a poll would; False if another worker recorded its entry first."""
    new = NewBrief(brief, item, list(targets), signature, language)
    return bool(store.write_poll(PollWrites(new_briefs=[new]), now).briefs)


def item_row(store: Store, feed: str, item_key: str) -> dict | None:
    """The recorded entry (feed, item key) as a dict of its columns, or None if it was never recorded."""
    with store.engine.connect() as c:
        row = c.execute(select(t.items).where(t.items.c.feed == feed, t.items.c.item_key == item_key)).first()
    return dict(row._mapping) if row else None


def items_recorded(store: Store, feed: str) -> int:
    """How many entries of `feed` are recorded."""
    with store.engine.connect() as c:
        return c.execute(select(func.count()).select_from(t.items).where(t.items.c.feed == feed)).scalar_one()
