"""A transaction cut short after the item was recorded must leave nothing behind.

`kill -9` between "item seen" and "brief stored" is the crash test's job, but it only hits that
instant by chance. Here the same window is hit every time: the brief insert fails after the item
insert, inside the one transaction. (On SQLite, a savepoint that opens a pysqlite transaction
commits on its own release: written that way, the item would survive without its brief, "seen"
forever with its brief never made.)
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from feedgen import Entry, make_env, make_settings, rss
from loopback import Reply
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from waits import async_wait_until
from storedata import item_row, items_recorded, save_brief

from bot.models import Brief, Source, utcnow
from bot.app.container import build_app, close_app, make_poller
from bot.pipeline.batching import PollWriteQueue
from bot.store import FeedUpdate, ItemRecord, NewBrief, PollWrites, Store, StoryJoin
from bot.store import schema as t


MAGNETS = Entry("China approves rare earth magnet export licences for 12 European firms",
                "China's commerce ministry approved rare earth magnet export licences for 12 European companies. "
                "NdPr oxide prices rose 4.5% to 615,000 yuan per tonne.", guid="wire-1",
                link="https://wire.example/magnets")
MAGNETS_OTHER = Entry("Beijing grants magnet export permits to a dozen EU companies",
                      "The Commerce Ministry granted rare earth magnet export licences to 12 European firms. "
                      "NdPr oxide gained 4.5% to 615,000 yuan per tonne.", guid="desk-9",
                      link="https://desk.example/permits")


def _item(key: str, status: str = "briefed", feed: str = "wire") -> ItemRecord:
    return ItemRecord(feed=feed, item_key=key, guid=key, link=f"https://wire.example/{key}", link_key=None,
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
    assert save_brief(store, _brief("b_0000000000000001"), _item("first"), ["console"])
    # Same brief id again: the brief insert fails after the (new) item was inserted.
    assert not save_brief(store, _brief("b_0000000000000001"), _item("second"), ["console"])
    assert item_row(store, "wire", "second") is None  # the next poll can brief it
    assert store.count_briefs() == 1 and len(store.outbox_rows()) == 1
    assert store.feed_state("wire").items_total == 1


@pytest.mark.fault("store: merge into a brief that no longer exists")
def test_failed_merge_leaves_no_item_behind(store):
    join = StoryJoin("b_missing00000000", _item("merged", status="merged"),
                     Source(url="https://wire.example/m", feed="wire", title="m"))
    written = store.write_poll(PollWrites(joins=[join]))
    assert written.joins == [] and written.joins_to_gone_stories == [join]
    assert item_row(store, "wire", "merged") is None
    assert store.feed_state("wire").items_total == 0


@pytest.mark.fault("store: one entry of a poll's write conflicts (recorded first by another worker)")
def test_conflicting_entry_drops_only_itself(store):
    """A poll's decisions are one transaction; an entry another worker recorded first (or a join to a
    story that is gone) must cost only that entry, not the rest of the feed's briefs. An entry left
    unwritten because its story is gone keeps the feed's document from counting as read."""
    assert save_brief(store, _brief("b_0000000000000010"), _item("taken"), ["console"])
    writes = PollWrites(
        quiet=[_item("off-topic", status="irrelevant")],
        new_briefs=[NewBrief(_brief("b_0000000000000011"), _item("fresh"), ["console"]),
                    NewBrief(_brief("b_0000000000000012"), _item("taken"), ["console"])],
        joins=[StoryJoin("b_0000000000000011", _item("joins-fresh", status="merged"),
                         Source(url="https://other.example/x", feed="other", title="x")),
               StoryJoin("b_gone000000000000", _item("joins-gone", status="merged"),
                         Source(url="https://other.example/y", feed="other", title="y"))],
        feed_updates=[FeedUpdate("wire", {"last_status": "ok", "body_hash": "d0c"})])
    written = store.write_poll(writes)
    assert [n.brief.id for n in written.briefs] == ["b_0000000000000011"]
    assert [n.brief.id for n in written.dropped_briefs] == ["b_0000000000000012"]
    assert [j.item.item_key for j in written.joins] == ["joins-fresh"]
    assert written.dropped_joins == []
    assert [j.item.item_key for j in written.joins_to_gone_stories] == ["joins-gone"]
    state = store.feed_state("wire")
    assert state.last_status == "ok" and state.body_hash is None  # read again next poll
    assert store.get_brief("b_0000000000000012") is None
    assert item_row(store, "wire", "joins-gone") is None  # unrecorded: read again next poll
    assert item_row(store, "wire", "off-topic")["status"] == "irrelevant"
    joined = store.get_brief("b_0000000000000011")
    assert [s.feed for s in joined.sources] == ["wire", "other"]
    # taken + off-topic + fresh + joins-fresh: the counter counts only what was really recorded.
    assert store.feed_state("wire").items_total == 4
    assert sorted(r.ref_id for r in store.outbox_rows()) == ["b_0000000000000010", "b_0000000000000011"]


def test_duplicate_item_is_refused_without_side_effects(store):
    assert save_brief(store, _brief("b_0000000000000002"), _item("dup"), ["console"])
    assert not save_brief(store, _brief("b_0000000000000003"), _item("dup"), ["console"])
    assert store.get_brief("b_0000000000000003") is None and len(store.outbox_rows()) == 1


@pytest.mark.fault("store: the database refuses one poll's rows inside a group commit")
def test_a_group_commit_the_database_refuses_writes_nothing(store):
    """Several polls' writes are one transaction: an error that is not a duplicate entry is raised
    and none of the polls is written (the caller then writes each poll alone)."""
    store.ensure_feed("desk", "https://desk.example/feed.xml")
    with store.engine.begin() as c:
        # A runtime error (RAISE(ABORT) would read as a constraint: "recorded by another worker").
        c.exec_driver_sql("CREATE TRIGGER refuse_desk BEFORE INSERT ON items WHEN NEW.feed = 'desk' "
                          "BEGIN SELECT json('feed desk refused'); END")
    wire = PollWrites(new_briefs=[NewBrief(_brief("b_0000000000000020"), _item("wire-story"), ["console"])],
                      feed_updates=[FeedUpdate("wire", {"last_status": "ok"})])
    desk = PollWrites(quiet=[_item("desk-football", status="irrelevant", feed="desk")])
    with pytest.raises(OperationalError, match="malformed JSON"):
        store.write_polls([wire, desk])
    assert store.count_briefs() == 0 and store.outbox_rows() == []
    assert item_row(store, "wire", "wire-story") is None and store.feed_state("wire").last_status is None
    (written,) = store.write_polls([wire])  # written alone, the other poll goes through
    assert [n.brief.id for n in written.briefs] == ["b_0000000000000020"]
    assert store.feed_state("wire").last_status == "ok" and store.feed_state("wire").items_total == 1


@pytest.mark.fault("store: the database fails while a poll's briefs are written")
async def test_failed_poll_write_leaves_no_ghost_story(http_server, tmp_path, db_url):
    """A story decided in a poll whose write then failed must leave the story index: otherwise the
    same story from another outlet (or the retried poll) joins a brief that does not exist, and its
    entry is dropped for good."""
    http_server.route("/a.xml", Reply(200, rss([MAGNETS]), content_type="application/rss+xml"))
    http_server.route("/b.xml", Reply(200, rss([MAGNETS_OTHER]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": n, "url": http_server.url(f"/{n}.xml")} for n in "ab"])
    app = build_app(settings, make_env(db_url))
    poller = make_poller(app)
    try:
        with app.store.engine.begin() as c:  # a real failure inside the write, from the database itself
            c.exec_driver_sql("CREATE TRIGGER briefs_fail BEFORE INSERT ON briefs "
                              "BEGIN SELECT * FROM table_that_is_not_there; END")
        first = await poller.poll_all(force=True)
        assert app.store.count_briefs() == 0
        # The story's own poll fails. The other outlet's fails too (its own story's write), or, when
        # it joined the failed story in the same group commit, leaves its entry unwritten and its
        # document unread (no body hash), to be read again.
        assert "error" in [r.outcome for r in first]
        assert all("table_that_is_not_there" in (app.store.feed_state(r.feed).last_error or "")
                   if r.outcome == "error" else r.merged == 0 and app.store.feed_state(r.feed).body_hash is None
                   for r in first)
        with app.store.engine.begin() as c:
            c.exec_driver_sql("DROP TRIGGER briefs_fail")
        second = await poller.poll_all(force=True)
    finally:
        await close_app(app)
    assert [r.outcome for r in second] == ["ok", "ok"]
    assert sum(len(r.new_briefs) for r in second) == 1 and sum(r.merged for r in second) == 1
    (brief,) = app.store.latest_briefs("rare-earth")
    assert sorted(s.feed for s in brief.sources) == ["a", "b"]


def _expire_lease(store: Store, feed: str, owner: str) -> None:
    """`owner`'s lease on `feed` has run out, as if its time had passed (time travel, not a sleep)."""
    with store.engine.begin() as c:
        expired = c.execute(update(t.feeds).where(t.feeds.c.name == feed, t.feeds.c.lease_owner == owner)
                            .values(lease_until=utcnow() - timedelta(seconds=1))).rowcount
    assert expired == 1, f"{owner} held no lease on {feed}"


@pytest.mark.fault("store: a stale worker records a new feed's entries while this worker's poll is in flight")
async def test_entries_recorded_meanwhile_by_another_worker_are_briefed_once(http_server, tmp_path, db_url):
    """A poll that claimed a feed with nothing recorded does not ask which entries are known. Should
    its lease run out and another worker record the same entries meanwhile, the database refuses
    its copies: one brief, one delivery, each entry counted once."""
    off_topic = Entry("Football club signs a new striker", "The club confirmed the transfer on Monday.",
                      guid="wire-2", link="https://wire.example/football")
    body = rss([MAGNETS, off_topic])
    release_first = threading.Event()
    replies = []

    def wire(_request):
        replies.append(_request)
        if len(replies) == 1:
            release_first.wait(30)  # the stale worker's fetch hangs until the other worker is done
        return Reply(200, body, content_type="application/rss+xml")

    http_server.route("/wire.xml", wire)
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/wire.xml")}])
    stale = build_app(settings, make_env(db_url))
    stale.worker_id = "stale"
    other = build_app(settings, make_env(db_url))
    other.worker_id = "other"
    try:
        stale_poll = asyncio.create_task(make_poller(stale).poll_all(force=True))
        await async_wait_until(lambda: replies, "the stale worker's fetch")
        assert stale.store.feed_state("wire").items_total == 0  # claimed with nothing recorded
        _expire_lease(other.store, "wire", "stale")  # the stale worker's lease runs out
        (fresh,) = await make_poller(other).poll_all(force=True)
        release_first.set()
        (late,) = await stale_poll
    finally:
        release_first.set()
        await close_app(stale)
        await close_app(other)
    assert fresh.outcome == "ok" and len(fresh.new_briefs) == 1 and fresh.irrelevant == 1
    assert late.outcome == "ok" and late.new_briefs == [] and late.error is None
    store = other.store
    assert store.count_briefs() == 1 and len(store.outbox_rows()) == 1
    assert store.feed_state("wire").items_total == 2
    assert items_recorded(store, "wire") == 2


class _GroupRecorder:
    """The store, noting how many polls each group commit (`write_polls`) carried."""

    def __init__(self, store: Store):
        self.store = store
        self.groups: list[int] = []

    def write_polls(self, batch, now=None):
        self.groups.append(len(batch))
        return self.store.write_polls(batch, now)

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.mark.fault("store: one poll's write fails inside a group commit")
async def test_a_failing_write_in_a_group_commit_costs_only_its_own_poll(store):
    """Polls handing over their writes together are written in one transaction; when that fails,
    each poll is written alone, so only the poll whose rows the database refuses fails."""
    store.ensure_feed("desk", "https://desk.example/feed.xml")
    with store.engine.begin() as c:  # the database refuses feed desk's rows, and only those
        # A runtime error (RAISE(ABORT) would read as a constraint: "recorded by another worker").
        c.exec_driver_sql("CREATE TRIGGER refuse_desk BEFORE INSERT ON items WHEN NEW.feed = 'desk' "
                          "BEGIN SELECT json('feed desk refused'); END")
    recorder = _GroupRecorder(store)
    writes = PollWriteQueue(recorder)
    wire = PollWrites(new_briefs=[NewBrief(_brief("b_0000000000000030"), _item("wire-story"), ["console"])],
                      feed_updates=[FeedUpdate("wire", {"last_status": "ok"})])
    desk = PollWrites(quiet=[_item("desk-football", status="irrelevant", feed="desk")],
                      feed_updates=[FeedUpdate("desk", {"last_status": "ok"})])
    # Handed over in the same turn of the event loop: one group, whatever the window.
    wrote_wire, wrote_desk = await asyncio.gather(writes.write(wire), writes.write(desk), return_exceptions=True)
    assert recorder.groups == [2]  # the group commit was tried, and refused
    assert isinstance(wrote_desk, OperationalError) and "malformed JSON" in str(wrote_desk)
    assert item_row(store, "desk", "desk-football") is None and store.feed_state("desk").last_status is None
    assert [n.brief.id for n in wrote_wire.briefs] == ["b_0000000000000030"]
    assert store.feed_state("wire").last_status == "ok" and store.feed_state("wire").items_total == 1
    assert [r.ref_id for r in store.outbox_rows()] == ["b_0000000000000030"]


def test_a_group_commits_feed_updates_each_land_on_their_own_feed(any_db_url):
    """Feed updates setting the same fields are written together; each feed still gets its own
    values, and the lease ends only for the updates that release it."""
    store = Store(any_db_url)
    store.create()
    for name in ("alpha", "desk", "wire", "zine"):
        store.ensure_feed(name, f"https://{name}.example/feed.xml")
    assert len(store.claim_feed_states(["alpha", "desk", "wire", "zine"], "w1", timedelta(minutes=5), force=True)) == 4
    polls = [PollWrites(feed_updates=[FeedUpdate("zine", {"last_status": "ok", "body_hash": "h-zine"}, "w1")]),
             PollWrites(feed_updates=[FeedUpdate("alpha", {"last_status": "error:http", "failures": 2})]),
             PollWrites(feed_updates=[FeedUpdate("wire", {"last_status": "ok", "body_hash": "h-wire"}, "w1"),
                                      FeedUpdate("desk", {"last_status": "unchanged"}, "w1")])]
    store.write_polls(polls)
    with store.engine.connect() as c:
        rows = {r.name: (r.last_status, r.body_hash, r.failures, r.lease_owner)
                for r in c.execute(t.feeds.select())}
    store.close()
    assert rows == {"alpha": ("error:http", None, 2, "w1"), "desk": ("unchanged", None, 0, None),
                    "wire": ("ok", "h-wire", 0, None), "zine": ("ok", "h-zine", 0, None)}
