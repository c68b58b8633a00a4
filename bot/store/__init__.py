"""The one store: feeds state, items, briefs (stories), outbox, digests, LLM cache/usage.

Synchronous SQLAlchemy: every call is a short transaction, cheap next to network I/O.
All timestamps are stored and returned as aware UTC datetimes.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import and_, bindparam, case, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.models import Brief, Figure, Source, utcnow
from bot.store import schema as t


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


@dataclass
class FeedState:
    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_fetch_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: str | None = None
    last_problem: str | None = None
    failures: int = 0
    last_error: str | None = None
    next_poll_at: datetime | None = None
    disabled_reason: str | None = None
    items_total: int = 0
    first_polled: bool = False


@dataclass
class OutboxRow:
    id: int
    kind: str
    ref_id: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    external_id: str | None
    created: datetime


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


@dataclass
class NewBrief:
    """A new story: its brief, the entry it comes from, where to deliver it, its signature."""
    brief: Brief
    item: ItemRecord
    targets: list[str]
    signature: dict | None = None
    language: str | None = None


@dataclass
class StoryJoin:
    """An entry joining a story (stored, or new in the same write) with the topics and figures it adds."""
    brief_id: str
    item: ItemRecord
    source: Source
    figures: list[Figure] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)


@dataclass
class PollWrites:
    """What (a stretch of) one or more polls decided; `Store.write_poll` writes it in one transaction."""
    quiet: list[ItemRecord] = field(default_factory=list)  # seen, no brief: off-topic, too old, LLM-irrelevant
    new_briefs: list[NewBrief] = field(default_factory=list)
    joins: list[StoryJoin] = field(default_factory=list)
    # Each poll's outcome on its feed's row (and the end of its lease), in the same transaction.
    feed_updates: list[FeedUpdate] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.quiet or self.new_briefs or self.joins or self.feed_updates)

    def take(self) -> PollWrites:
        """These writes, moved into a new PollWrites; this one is left empty for what comes next."""
        taken = PollWrites(self.quiet, self.new_briefs, self.joins, self.feed_updates)
        self.quiet, self.new_briefs, self.joins, self.feed_updates = [], [], [], []
        return taken

    @classmethod
    def merged(cls, batch: list[PollWrites]) -> PollWrites:
        return cls(quiet=[r for w in batch for r in w.quiet], new_briefs=[n for w in batch for n in w.new_briefs],
                   joins=[j for w in batch for j in w.joins], feed_updates=[u for w in batch for u in w.feed_updates])


@dataclass
class FeedUpdate:
    """`Store.update_feed(name, release_owner=…, **values)` as part of a larger write.

    Its `body_hash` says the feed's document has been decided in full; it is left out when an
    entry could not be written because the story it joins is gone, so the next poll reads the
    document again (rather than skipping it as unchanged) and decides that entry anew."""
    name: str
    values: dict[str, Any]
    release_owner: str | None = None


@dataclass
class WrittenPoll:
    briefs: list[NewBrief] = field(default_factory=list)
    joins: list[StoryJoin] = field(default_factory=list)
    # Refused: another worker recorded the entry first.
    dropped_briefs: list[NewBrief] = field(default_factory=list)
    dropped_joins: list[StoryJoin] = field(default_factory=list)
    # Not written: the story to join is gone (pruned, or its own write failed). Left unrecorded.
    joins_to_gone_stories: list[StoryJoin] = field(default_factory=list)


class _StoryGone(Exception):
    """A story to join was not found inside the write's transaction."""


def _item_row(rec: ItemRecord, now: datetime) -> dict:
    return dict(feed=rec.feed, item_key=rec.item_key, guid=rec.guid, link=rec.link, link_key=rec.link_key,
                content_key=rec.content_key, title=rec.title, published=rec.published, seen_at=now,
                status=rec.status, topics=rec.topics, brief_id=rec.brief_id)


def _source_row(brief_id: str, source: Source, now: datetime) -> dict:
    return dict(brief_id=brief_id, url=source.url, feed=source.feed, title=source.title, published=source.published,
                added=now)


def _outbox_rows(kind: str, ref_id: str, targets: list[str], now: datetime) -> list[dict]:
    return [dict(kind=kind, ref_id=ref_id, target=target, status="pending", attempts=0, created=now,
                 next_attempt_at=now) for target in targets]


def _row_to_feed_state(row) -> FeedState:
    m = dict(row._mapping)
    m.pop("lease_owner", None)
    m.pop("lease_until", None)
    for k in ("last_fetch_at", "last_success_at", "next_poll_at"):
        m[k] = as_utc(m[k])
    m["failures"] = m["failures"] or 0
    m["items_total"] = m["items_total"] or 0
    m["first_polled"] = bool(m["first_polled"])
    return FeedState(**m)


def _row_to_outbox(row) -> OutboxRow:
    m = row._mapping
    return OutboxRow(
        id=m["id"], kind=m["kind"], ref_id=m["ref_id"], target=m["target"], status=m["status"],
        attempts=m["attempts"], next_attempt_at=as_utc(m["next_attempt_at"]), last_error=m["last_error"],
        external_id=m["external_id"], created=as_utc(m["created"]),
    )


def _search_text(brief: Brief) -> str:
    parts = list(brief.title.values()) + list(brief.summary.values())
    parts += [f.text for f in brief.figures] + [s.title for s in brief.sources]
    return " ".join(parts).lower()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1] if "///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_session_utc)
    return engine


def _postgres_session_utc(dbapi_conn, _record) -> None:
    """Sessions in UTC whatever the server's TimeZone: timestamps come back in UTC, and a naive
    datetime (if one slips through) means UTC as it does on SQLite."""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True  # a SET inside a later-rolled-back transaction would be undone
    try:
        dbapi_conn.execute("SET TIME ZONE 'UTC'")
    finally:
        dbapi_conn.autocommit = autocommit


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._build_statements()

    def _build_statements(self) -> None:
        """The statements of the poll path, built once with bound parameters.

        Building a Core statement (coercing every value into a bind parameter) costs more CPU than
        SQLite takes to run it; a warm poll is little more than these statements, a cold one runs
        them for every entry. Values travel as execution parameters instead.
        """
        f, i = t.feeds.c, t.items.c
        by_name = f.name == bindparam("feed_name")
        free = or_(f.lease_until.is_(None), f.lease_until < bindparam("now"), f.lease_owner == bindparam("owner"))
        due = or_(f.next_poll_at.is_(None), f.next_poll_at <= bindparam("now"))

        def claim(which, force: bool):
            """Lease the `which` feeds that are enabled, free and (unless forced) due."""
            cond = [which, f.disabled_reason.is_(None), free] + ([] if force else [due])
            return update(t.feeds).where(and_(*cond)).values(lease_owner=bindparam("owner"),
                                                             lease_until=bindparam("until"))

        self._claim_feed_stmt = {force: claim(by_name, force) for force in (False, True)}
        # RETURNING (SQLite >= 3.35, PostgreSQL) hands back the claimed feeds' state in the same statement,
        # for any number of feeds at once.
        self._claim_returns_state = bool(self.engine.dialect.update_returning)
        by_names = f.name.in_(bindparam("feed_names", expanding=True))
        self._claim_feeds_returning_stmt = {force: claim(by_names, force).returning(*t.feeds.c)
                                            for force in (False, True)}
        self._feed_state_stmt = select(t.feeds).where(by_name)
        self._feed_state_fields = frozenset(t.feeds.c.keys()) - {"name"}
        # SET columns come from the execution parameters' keys (one cached compilation per key set).
        self._update_feed_stmt = update(t.feeds).where(by_name)
        # The same, also ending this owner's lease: SET expressions see the row as it was, so both
        # CASEs test the old owner. Another owner's lease (taken after ours expired) stays.
        ours = f.lease_owner == bindparam("release_owner")
        self._update_feed_release_stmt = update(t.feeds).where(by_name).values(
            lease_owner=case((ours, None), else_=f.lease_owner), lease_until=case((ours, None), else_=f.lease_until))
        self._release_feed_stmt = update(t.feeds).where(by_name, f.lease_owner == bindparam("owner")).values(
            lease_owner=None, lease_until=None)
        self._count_items_stmt = update(t.feeds).where(by_name).values(
            items_total=f.items_total + bindparam("added", type_=t.feeds.c.items_total.type))
        self._insert_item_stmt = insert(t.items)
        self._insert_item_ignoring_stmt = self._on_conflict_do_nothing(t.items)
        self._known_items_stmt = select(i.item_key, i.link_key, i.content_key).where(
            i.feed == bindparam("feed_name"),
            or_(i.item_key.in_(bindparam("item_keys", expanding=True)),
                i.link_key.in_(bindparam("link_keys", expanding=True)),
                i.content_key.in_(bindparam("content_keys", expanding=True))))
        self._insert_brief_stmt = insert(t.briefs)
        self._briefs_to_join_stmt = (select(t.briefs.c.id, t.briefs.c.doc)
                                     .where(t.briefs.c.id.in_(bindparam("ids", expanding=True)))
                                     .order_by(t.briefs.c.id).with_for_update())
        self._update_brief_doc_stmt = update(t.briefs).where(t.briefs.c.id == bindparam("story_id"))
        # Built once: INSERT … ON CONFLICT DO NOTHING per table (None where the dialect has none).
        self._insert_ignoring_stmts = {table.name: self._on_conflict_do_nothing(table)
                                       for table in (t.outbox, t.brief_sources, t.brief_topics)}

    def _on_conflict_do_nothing(self, table):
        """INSERT … ON CONFLICT DO NOTHING for this database, or None where the dialect has none."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            return None
        return dialect_insert(table).on_conflict_do_nothing()

    # ----------------------------------------------------------------- schema
    def create(self) -> None:
        """Create or migrate the schema to the current version."""
        from bot.store.migrate import upgrade

        upgrade(self)

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------- feeds
    def ensure_feed(self, name: str, url: str) -> None:
        with self.engine.begin() as c:
            row = c.execute(select(t.feeds.c.url).where(t.feeds.c.name == name)).first()
            if row is None:
                try:
                    with c.begin_nested():
                        c.execute(insert(t.feeds).values(name=name, url=url, failures=0, items_total=0,
                                                         first_polled=False))
                except IntegrityError:
                    pass  # another worker created it first
            elif row.url != url:
                # A changed URL is a new feed: forget validators, health and backoff.
                c.execute(update(t.feeds).where(t.feeds.c.name == name).values(
                    url=url, etag=None, last_modified=None, body_hash=None, failures=0, last_error=None,
                    next_poll_at=None, disabled_reason=None))

    def feed_state(self, name: str) -> FeedState | None:
        with self.engine.connect() as c:
            row = c.execute(self._feed_state_stmt, {"feed_name": name}).first()
        return _row_to_feed_state(row) if row else None

    def feed_states(self) -> list[FeedState]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.feeds).order_by(t.feeds.c.name)).all()
        return [_row_to_feed_state(r) for r in rows]

    def update_feed(self, name: str, *, release_owner: str | None = None, **values: Any) -> None:
        """Set feed state fields. With `release_owner`, the same UPDATE also ends that owner's lease
        (as `release_feed` would), so recording a poll's result and releasing the feed is one statement."""
        if not values and release_owner is None:
            return
        statement = self._update_feed_statement(FeedUpdate(name, values, release_owner))
        with self.engine.begin() as c:
            c.execute(*statement)

    def _update_feed_statement(self, update: FeedUpdate) -> tuple[Any, dict]:
        unknown = set(update.values) - self._feed_state_fields
        if unknown:
            raise ValueError(f"unknown feed state fields: {sorted(unknown)}")
        if update.release_owner is not None and {"lease_owner", "lease_until"} & set(update.values):
            raise ValueError("update_feed: set the lease fields or release_owner, not both")
        params = {"feed_name": update.name, **update.values}
        if update.release_owner is None:
            return self._update_feed_stmt, params
        params["release_owner"] = update.release_owner
        return self._update_feed_release_stmt, params

    def claim_feed(self, name: str, owner: str, lease: timedelta, now: datetime | None = None,
                   force: bool = False) -> bool:
        """Claim the next poll of a feed across workers: due (unless `force`), enabled, not leased elsewhere.

        One conditional UPDATE is atomic on SQLite and PostgreSQL alike (a concurrent claimer
        re-evaluates the WHERE after the first commits and matches no row).
        """
        return self.claim_feed_state(name, owner, lease, now, force) is not None

    def claim_feed_state(self, name: str, owner: str, lease: timedelta, now: datetime | None = None,
                         force: bool = False) -> FeedState | None:
        """`claim_feed` that also returns the claimed feed's state (None: not claimed), read in the
        claiming statement itself (UPDATE … RETURNING) where the database supports it."""
        if self._claim_returns_state:
            return self.claim_feed_states([name], owner, lease, now, force).get(name)
        now = now or utcnow()
        params = {"feed_name": name, "owner": owner, "now": now, "until": now + lease}
        with self.engine.begin() as c:
            claimed = c.execute(self._claim_feed_stmt[force], params).rowcount == 1
            row = c.execute(self._feed_state_stmt, {"feed_name": name}).first() if claimed else None
        return _row_to_feed_state(row) if row else None

    def claim_feed_states(self, names: list[str], owner: str, lease: timedelta, now: datetime | None = None,
                          force: bool = False) -> dict[str, FeedState]:
        """`claim_feed_state` for several feeds in one statement: the state of each feed claimed."""
        if not self._claim_returns_state:
            claimed = {name: self.claim_feed_state(name, owner, lease, now, force) for name in names}
            return {name: state for name, state in claimed.items() if state is not None}
        now = now or utcnow()
        params = {"feed_names": sorted(set(names)), "owner": owner, "now": now, "until": now + lease}
        with self.engine.begin() as c:
            rows = c.execute(self._claim_feeds_returning_stmt[force], params).all()
        return {row.name: _row_to_feed_state(row) for row in rows}

    def release_feed(self, name: str, owner: str) -> None:
        with self.engine.begin() as c:
            c.execute(self._release_feed_stmt, {"feed_name": name, "owner": owner})

    # ----------------------------------------------------------------- items
    def find_item(self, feed: str, item_key: str, link_key: str | None, content_key: str | None) -> dict | None:
        """An earlier record of this entry: same key, or (GUID churn) same canonical link or content."""
        conds = [t.items.c.item_key == item_key]
        if link_key:
            conds.append(t.items.c.link_key == link_key)
        if content_key:
            conds.append(t.items.c.content_key == content_key)
        with self.engine.connect() as c:
            row = c.execute(select(t.items).where(t.items.c.feed == feed, or_(*conds)).limit(1)).first()
        return dict(row._mapping) if row else None

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
            rows = c.execute(self._known_items_stmt, params).all()
        return {key for row in rows for key in row if key}

    def record_items(self, records: list[ItemRecord], now: datetime | None = None) -> None:
        """Record entries that produce no brief (irrelevant, too old) as seen; an entry another
        worker recorded first is skipped."""
        self.write_poll(PollWrites(quiet=list(records)), now)

    def _insert_quiet_items(self, c, records: list[ItemRecord], now: datetime) -> Counter:
        """INSERT … ON CONFLICT DO NOTHING; returns the rows really inserted, per feed."""
        added: Counter = Counter()
        if self._insert_item_ignoring_stmt is None:  # no ON CONFLICT: a savepoint per entry
            for rec in records:
                try:
                    with c.begin_nested():
                        c.execute(self._insert_item_stmt, _item_row(rec, now))
                    added[rec.feed] += 1
                except IntegrityError:
                    pass  # already recorded by a concurrent worker
            return added
        if self.engine.dialect.name == "sqlite":
            # pysqlite's executemany counts the rows it inserted (a skipped duplicate counts 0). Cheaper
            # than RETURNING, which makes SQLAlchemy render (and SQLite compile) a new multi-row
            # statement for every batch: that was a third of a cold poll's write.
            by_feed: dict[str, list[ItemRecord]] = {}
            for rec in records:
                by_feed.setdefault(rec.feed, []).append(rec)
            for feed, recs in by_feed.items():
                rows = [_item_row(rec, now) for rec in recs]
                added[feed] += c.execute(self._insert_item_ignoring_stmt, rows).rowcount
            return +added  # (drops zero counts, as the RETURNING form does)
        # RETURNING says which rows went in: executemany's rowcount is -1 on PostgreSQL, where
        # SQLAlchemy batches the rows into one statement.
        stmt = self._insert_item_ignoring_stmt.returning(t.items.c.feed)
        added.update(row.feed for row in c.execute(stmt, [_item_row(rec, now) for rec in records]))
        return added

    # ----------------------------------------------------------------- briefs
    def save_new_brief(self, brief: Brief, item: ItemRecord, targets: list[str], signature: dict | None,
                       language: str | None = None, now: datetime | None = None) -> bool:
        """Atomically: the item is seen, the brief stored, and one outbox row per target queued.

        Returns False (and changes nothing) if another worker recorded the item first. A crash
        before commit leaves nothing, so the next poll briefs the item again: no loss, no double.
        """
        written = self.write_poll(PollWrites(new_briefs=[NewBrief(brief, item, targets, signature, language)]), now)
        return bool(written.briefs)

    def add_source_to_brief(self, brief_id: str, source: Source, item: ItemRecord, figures: Iterable[Figure] = (),
                            topics: Iterable[str] = (), now: datetime | None = None) -> bool:
        """Join an item to a stored story: record the item, and add its source, topics and new
        figures to the brief, atomically. False (nothing changed): the item was recorded first by
        another worker, or the story is gone."""
        join = StoryJoin(brief_id, item, source, list(figures), list(topics))
        return bool(self.write_poll(PollWrites(joins=[join]), now).joins)

    def write_poll(self, writes: PollWrites, now: datetime | None = None) -> WrittenPoll:
        """Write what (a stretch of) a poll decided in one transaction: one commit per feed rather
        than one per brief, which was most of a cold poll's database time.

        An entry another worker recorded first (or a join to a story that is gone) fails the whole
        transaction; the entries are then written one by one, so only those are dropped. A dropped
        entry stays unrecorded: its story is another worker's, or it is decided anew next time.
        """
        if not writes:
            return WrittenPoll()
        now = now or utcnow()
        if self._try_write(writes, now):
            return WrittenPoll(briefs=list(writes.new_briefs), joins=list(writes.joins))
        return self._write_one_by_one(writes, now)

    def write_polls(self, batch: list[PollWrites], now: datetime | None = None) -> list[WrittenPoll]:
        """Several polls' writes in one transaction (group commit: a commit costs about as much CPU
        as the rows it writes), each poll's result apart. Should the transaction be refused, each
        poll is written as `write_poll` would write it alone. Any other error is raised, and nothing
        is written."""
        now = now or utcnow()
        if len(batch) > 1 and self._try_write(PollWrites.merged(batch), now):
            return [WrittenPoll(briefs=list(w.new_briefs), joins=list(w.joins)) for w in batch]
        return [self.write_poll(w, now) for w in batch]

    def _write_one_by_one(self, writes: PollWrites, now: datetime) -> WrittenPoll:
        written = WrittenPoll()
        # New stories first: a join to one of them then finds it stored.
        for new in writes.new_briefs:
            ok = self._try_write(PollWrites(new_briefs=[new]), now)
            (written.briefs if ok else written.dropped_briefs).append(new)
        for join in writes.joins:
            try:
                with self.engine.begin() as c:
                    self._write_poll(c, PollWrites(joins=[join]), now)
                written.joins.append(join)
            except IntegrityError:
                written.dropped_joins.append(join)
            except _StoryGone:
                written.joins_to_gone_stories.append(join)
        # Last, and cannot be refused (duplicates are skipped): a crash before it leaves the feed to
        # be read again, with everything above already known.
        unfinished = {join.item.feed for join in written.joins_to_gone_stories}
        updates = [FeedUpdate(u.name, {k: v for k, v in u.values.items() if k != "body_hash"}, u.release_owner)
                   if u.name in unfinished else u for u in writes.feed_updates]
        if writes.quiet or updates:
            with self.engine.begin() as c:
                self._write_poll(c, PollWrites(quiet=writes.quiet, feed_updates=updates), now)
        return written

    def _try_write(self, writes: PollWrites, now: datetime) -> bool:
        try:
            with self.engine.begin() as c:
                self._write_poll(c, writes, now)
            return True
        except (IntegrityError, _StoryGone):
            return False

    def _write_poll(self, c, w: PollWrites, now: datetime) -> None:
        added: Counter = Counter()
        claimed = []
        for new in w.new_briefs:
            new.item.brief_id = new.brief.id
            claimed.append(new.item)
        for join in w.joins:
            join.item.brief_id = join.brief_id
            claimed.append(join.item)
        if claimed:
            # A plain INSERT: an entry another worker recorded first raises IntegrityError. On SQLite
            # this first write also takes the database's write lock, so the stories read below stay
            # as read until commit (PostgreSQL: FOR UPDATE).
            c.execute(self._insert_item_stmt, [_item_row(rec, now) for rec in claimed])
            added.update(rec.feed for rec in claimed)
        if w.quiet:
            added.update(self._insert_quiet_items(c, w.quiet, now))

        joins_by_story: dict[str, list[StoryJoin]] = {}
        for join in w.joins:
            joins_by_story.setdefault(join.brief_id, []).append(join)
        new_ids = {new.brief.id for new in w.new_briefs}
        stored_ids = sorted(set(joins_by_story) - new_ids)  # one lock order for every worker
        stored_docs = {}
        if stored_ids:
            stored_docs = dict(c.execute(self._briefs_to_join_stmt, {"ids": stored_ids}).all())
            if len(stored_docs) < len(stored_ids):
                raise _StoryGone  # pruned meanwhile: roll back, the entries are written one by one

        brief_rows, topic_rows, source_rows, outbox_rows, doc_updates = [], [], [], [], []
        for new in w.new_briefs:
            brief = new.brief
            if brief.id in joins_by_story:  # joined within this same write: stored with its sources
                brief = brief.model_copy(deep=True)
                for join in joins_by_story[brief.id]:
                    brief.add_source(join.source, join.figures, join.topics)
            brief_rows.append(dict(id=brief.id, doc=brief.to_json_dict(), mode=brief.mode, created=brief.created,
                                   updated=now, published=brief.published, language=new.language,
                                   search_text=_search_text(brief), signature=new.signature))
            topic_rows += [dict(brief_id=brief.id, topic=topic, created=brief.created) for topic in brief.topics]
            source_rows += [_source_row(brief.id, source, now) for source in brief.sources]
            outbox_rows += _outbox_rows("brief", brief.id, new.targets, now)
        for brief_id in stored_ids:
            brief = Brief.model_validate(stored_docs[brief_id])
            known_topics = set(brief.topics)
            for join in joins_by_story[brief_id]:
                brief.add_source(join.source, join.figures, join.topics)
                source_rows.append(_source_row(brief_id, join.source, now))
            # A topic a later source adds makes the story answer `/brief <that topic>` too.
            topic_rows += [dict(brief_id=brief_id, topic=topic, created=brief.created)
                           for topic in brief.topics if topic not in known_topics]
            doc_updates.append(dict(story_id=brief_id, doc=brief.to_json_dict(), updated=now,
                                    search_text=_search_text(brief)))
        if brief_rows:
            c.execute(self._insert_brief_stmt, brief_rows)
        if doc_updates:
            c.execute(self._update_brief_doc_stmt, doc_updates)
        # Ignoring duplicates: a source listed already (republished under another GUID), a topic row
        # already there, a delivery queued already are no-ops.
        self._insert_ignoring_duplicates(c, t.brief_topics, topic_rows)
        self._insert_ignoring_duplicates(c, t.brief_sources, source_rows)
        self._insert_ignoring_duplicates(c, t.outbox, outbox_rows)
        if added:
            c.execute(self._count_items_stmt, [{"feed_name": feed, "added": n} for feed, n in added.items()])
        for feed_update in sorted(w.feed_updates, key=lambda u: u.name):  # one lock order for every worker
            c.execute(*self._update_feed_statement(feed_update))

    def get_brief(self, brief_id: str) -> Brief | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.briefs.c.doc).where(t.briefs.c.id == brief_id)).first()
        return Brief.model_validate(row.doc) if row else None

    def latest_briefs(self, topic: str | None, limit: int = 5) -> list[Brief]:
        with self.engine.connect() as c:
            if topic:
                q = (select(t.briefs.c.doc).join(t.brief_topics, t.brief_topics.c.brief_id == t.briefs.c.id)
                     .where(t.brief_topics.c.topic == topic)
                     .order_by(t.brief_topics.c.created.desc()).limit(limit))
            else:
                q = select(t.briefs.c.doc).order_by(t.briefs.c.created.desc()).limit(limit)
            rows = c.execute(q).all()
        return [Brief.model_validate(r.doc) for r in rows]

    def search_briefs(self, words: list[str], limit: int = 5) -> list[Brief]:
        words = [w.lower() for w in words if w.strip()]
        if not words:
            return []
        conds = [t.briefs.c.search_text.contains(w, autoescape=True) for w in words]
        with self.engine.connect() as c:
            rows = c.execute(select(t.briefs.c.doc).where(and_(*conds))
                             .order_by(t.briefs.c.created.desc()).limit(limit)).all()
        return [Brief.model_validate(r.doc) for r in rows]

    def briefs_between(self, start: datetime, end: datetime, topics: list[str] | None = None) -> list[Brief]:
        """Briefs created or updated within [start, end), optionally restricted to topics."""
        with self.engine.connect() as c:
            q = select(t.briefs.c.doc).where(t.briefs.c.updated >= start, t.briefs.c.created < end)
            if topics is not None:
                sub = select(t.brief_topics.c.brief_id).where(t.brief_topics.c.topic.in_(topics))
                q = q.where(t.briefs.c.id.in_(sub))
            rows = c.execute(q.order_by(t.briefs.c.created.desc())).all()
        return [Brief.model_validate(r.doc) for r in rows]

    def story_candidates(self, since: datetime, limit: int | None = 500) -> list[tuple[str, dict, str | None]]:
        """(brief id, signature, language) of recent stories, for cross-outlet matching."""
        q = (select(t.briefs.c.id, t.briefs.c.signature, t.briefs.c.language)
             .where(t.briefs.c.created >= since).order_by(t.briefs.c.created.desc()))
        with self.engine.connect() as c:
            rows = c.execute(q.limit(limit) if limit else q).all()
        return [(r.id, r.signature or {}, r.language) for r in rows]

    def count_briefs(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(t.briefs)).scalar_one()

    # ----------------------------------------------------------------- outbox
    def _insert_ignoring_duplicates(self, c, table, rows: list[dict]) -> None:
        """INSERT … ON CONFLICT DO NOTHING: no savepoint, so it never splits the caller's transaction
        (with pysqlite a SAVEPOINT that opens a transaction commits on its own release)."""
        if not rows:
            return
        stmt = self._insert_ignoring_stmts[table.name]
        if stmt is None:  # other databases: one savepoint per row
            for row in rows:
                try:
                    with c.begin_nested():
                        c.execute(insert(table).values(**row))
                except IntegrityError:
                    pass
            return
        c.execute(stmt, rows)

    def _enqueue(self, c, kind: str, ref_id: str, targets: list[str], now: datetime) -> None:
        # A delivery is unique per (kind, ref, target): queuing it again is a no-op.
        self._insert_ignoring_duplicates(c, t.outbox, _outbox_rows(kind, ref_id, targets, now))

    def enqueue(self, kind: str, ref_id: str, targets: list[str], now: datetime | None = None) -> None:
        with self.engine.begin() as c:
            self._enqueue(c, kind, ref_id, targets, now or utcnow())

    def claim_outbox(self, owner: str, lease: timedelta, limit: int = 50,
                     now: datetime | None = None) -> list[OutboxRow]:
        """Claim due pending rows, oldest first, each with a per-row conditional UPDATE."""
        now = now or utcnow()
        free = or_(t.outbox.c.lease_until.is_(None), t.outbox.c.lease_until < now)
        with self.engine.connect() as c:
            ids = [r[0] for r in c.execute(
                select(t.outbox.c.id).where(t.outbox.c.status == "pending", t.outbox.c.next_attempt_at <= now, free)
                .order_by(t.outbox.c.id).limit(limit)).all()]
        claimed: list[OutboxRow] = []
        for row_id in ids:
            with self.engine.begin() as c:
                # Re-checked in the UPDATE: another worker may have sent, retried (later due) or
                # leased the row since the SELECT above.
                res = c.execute(update(t.outbox).where(t.outbox.c.id == row_id, t.outbox.c.status == "pending",
                                                       t.outbox.c.next_attempt_at <= now, free)
                                .values(lease_owner=owner, lease_until=now + lease))
                if res.rowcount == 1:
                    row = c.execute(select(t.outbox).where(t.outbox.c.id == row_id)).first()
                    claimed.append(_row_to_outbox(row))
        return claimed

    def outbox_attempt(self, row_id: int, now: datetime | None = None) -> None:
        """Count an attempt *before* sending, so a crash mid-send is visible on the next try."""
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == row_id)
                      .values(attempts=t.outbox.c.attempts + 1))

    def outbox_sent(self, row_id: int, external_id: str | None = None, now: datetime | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(
                status="sent", sent_at=now or utcnow(), external_id=external_id, last_error=None,
                lease_owner=None, lease_until=None))

    def outbox_retry(self, row_id: int, error: str, next_attempt_at: datetime) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(
                status="pending", last_error=error[:2000], next_attempt_at=next_attempt_at,
                lease_owner=None, lease_until=None))

    def outbox_failed(self, row_id: int, error: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(
                status="failed", last_error=error[:2000], lease_owner=None, lease_until=None))

    def requeue_failed(self) -> int:
        with self.engine.begin() as c:
            res = c.execute(update(t.outbox).where(t.outbox.c.status == "failed").values(
                status="pending", next_attempt_at=utcnow(), lease_owner=None, lease_until=None))
        return res.rowcount

    def outbox_rows(self, status: str | None = None, ref_id: str | None = None) -> list[OutboxRow]:
        q = select(t.outbox).order_by(t.outbox.c.id)
        if status:
            q = q.where(t.outbox.c.status == status)
        if ref_id:
            q = q.where(t.outbox.c.ref_id == ref_id)
        with self.engine.connect() as c:
            return [_row_to_outbox(r) for r in c.execute(q).all()]

    def outbox_backlog(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(t.outbox)
                             .where(t.outbox.c.status == "pending")).scalar_one()

    # ----------------------------------------------------------------- digests
    def claim_digest_run(self, name: str, day: str, scheduled_for: datetime, owner: str,
                         doc: dict | None = None) -> bool:
        """The unique row is the claim: only the first worker (or first run after a restart) wins."""
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.digest_runs).values(id=f"{name}:{day}", name=name, day=day,
                                                       scheduled_for=scheduled_for, created=utcnow(),
                                                       owner=owner, doc=doc))
            return True
        except IntegrityError:
            return False

    def set_digest_doc(self, run_id: str, doc: dict) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.digest_runs).where(t.digest_runs.c.id == run_id).values(doc=doc))

    def get_digest_run(self, run_id: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.digest_runs).where(t.digest_runs.c.id == run_id)).first()
        return dict(row._mapping) if row else None

    def digest_runs(self, name: str | None = None) -> list[dict]:
        q = select(t.digest_runs).order_by(t.digest_runs.c.scheduled_for)
        if name:
            q = q.where(t.digest_runs.c.name == name)
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q).all()]

    # ----------------------------------------------------------------- LLM cache and usage
    def cache_get(self, key: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.llm_cache.c.reply).where(t.llm_cache.c.key == key)).first()
        return row.reply if row else None

    def cache_put(self, key: str, reply: dict) -> None:
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.llm_cache).values(key=key, reply=reply, created=utcnow()))
        except IntegrityError:
            pass

    def record_llm_usage(self, model: str, purpose: str, prompt_tokens: int, completion_tokens: int,
                         latency_ms: float | None, outcome: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        with self.engine.begin() as c:
            c.execute(insert(t.llm_usage).values(day=now.strftime("%Y-%m-%d"), model=model, purpose=purpose,
                                                 prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                                 latency_ms=latency_ms, outcome=outcome, created=now))

    def llm_tokens_on(self, day: str) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.coalesce(func.sum(t.llm_usage.c.prompt_tokens
                                                               + t.llm_usage.c.completion_tokens), 0))
                                 .where(t.llm_usage.c.day == day)).scalar_one())

    def llm_usage_by_day(self, days: int = 14) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.llm_usage.c.day, func.count().label("calls"),
                                    func.sum(t.llm_usage.c.prompt_tokens).label("prompt_tokens"),
                                    func.sum(t.llm_usage.c.completion_tokens).label("completion_tokens"))
                             .group_by(t.llm_usage.c.day).order_by(t.llm_usage.c.day.desc()).limit(days)).all()
        # PostgreSQL sums BIGINT as NUMERIC (Decimal); callers do float arithmetic on these.
        return [{k: int(v) if k.endswith("tokens") and v is not None else v for k, v in r._mapping.items()}
                for r in rows]

    # ----------------------------------------------------------------- generic leases
    def try_lease(self, name: str, owner: str, ttl: timedelta, now: datetime | None = None) -> bool:
        now = now or utcnow()
        with self.engine.begin() as c:
            res = c.execute(update(t.leases).where(t.leases.c.name == name,
                                                   or_(t.leases.c.until < now, t.leases.c.owner == owner))
                            .values(owner=owner, until=now + ttl))
            if res.rowcount == 1:
                return True
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.leases).values(name=name, owner=owner, until=now + ttl))
            return True
        except IntegrityError:
            return False

    def release_lease(self, name: str, owner: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(t.leases).where(t.leases.c.name == name, t.leases.c.owner == owner))


def default_worker_id() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
