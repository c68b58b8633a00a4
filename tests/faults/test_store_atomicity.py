"""A transaction cut short after the item was recorded must leave nothing behind.

`kill -9` between "item seen" and "brief stored" is the crash test's job, but it only hits that
instant by chance. Here the same window is hit every time: the brief insert fails after the item
insert, inside the one transaction. (On SQLite, a savepoint that opens a pysqlite transaction
commits on release, which once let the item survive without its brief: the item was then
"seen" forever and its brief never made.)
"""

from __future__ import annotations

import pytest

from bot.models import Brief, Source, utcnow
from bot.store import ItemRecord, Store


def _item(key: str, status: str = "briefed") -> ItemRecord:
    return ItemRecord(feed="wire", item_key=key, guid=key, link=f"https://wire.example/{key}", link_key=None,
                      content_key=None, title=key, published=utcnow(), status=status, topics=["rare-earth"])


def _brief(brief_id: str) -> Brief:
    return Brief(id=brief_id, topics=["rare-earth"], title={"en": "t", "zh": "t"}, summary={"en": "s", "zh": "s"},
                 mode="extractive", sources=[Source(url="https://wire.example/a", feed="wire", title="t")])


@pytest.fixture
def store(db_url):
    store = Store(db_url)
    store.create()
    store.ensure_feed("wire", "https://wire.example/feed.xml")
    yield store
    store.close()


@pytest.mark.fault("store: brief insert fails after the item insert")
def test_failed_brief_insert_leaves_no_item_behind(store):
    assert store.save_new_brief(_brief("b_0000000000000001"), _item("first"), ["console"], None)
    # Same brief id again: the brief insert fails after the (new) item was inserted.
    assert store.save_new_brief(_brief("b_0000000000000001"), _item("second"), ["console"], None) is False
    assert store.find_item("wire", "second", None, None) is None  # the next poll can brief it
    assert store.count_briefs() == 1 and len(store.outbox_rows()) == 1
    assert store.feed_state("wire").items_total == 1


@pytest.mark.fault("store: merge into a brief that no longer exists")
def test_failed_merge_leaves_no_item_behind(store):
    assert store.add_source_to_brief("b_missing00000000", Source(url="https://wire.example/m", feed="wire", title="m"),
                                     _item("merged", status="merged")) is False
    assert store.find_item("wire", "merged", None, None) is None
    # The same with the merged document in hand (the pipeline's path: no read inside the transaction).
    assert store.add_source_to_brief("b_missing00000000", Source(url="https://wire.example/m", feed="wire", title="m"),
                                     _item("merged", status="merged"), brief=_brief("b_missing00000000")) is False
    assert store.find_item("wire", "merged", None, None) is None


def test_duplicate_item_is_refused_without_side_effects(store):
    assert store.save_new_brief(_brief("b_0000000000000002"), _item("dup"), ["console"], None)
    assert store.save_new_brief(_brief("b_0000000000000003"), _item("dup"), ["console"], None) is False
    assert store.get_brief("b_0000000000000003") is None and len(store.outbox_rows()) == 1
