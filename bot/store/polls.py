"""A poll's write: its entries, new stories, joins to stories, deliveries and feed state, in one
transaction, so a crash leaves either all of a poll's decisions or none of them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.models import Brief, utcnow
from bot.store import schema as t
from bot.store.briefs import BRIEFS_TO_JOIN, INSERT_BRIEF, UPDATE_BRIEF_DOC, NewBrief, StoryJoin, search_text, \
    source_row
from bot.store.feeds import COUNT_ITEMS, FeedUpdate, feed_update_statement
from bot.store.held import NOTICE
from bot.store.items import INSERT_ITEM, ItemRecord, ItemsStore, item_row
from bot.store.outbox import outbox_insert_rows


@dataclass
class NewNotice:
    """A flood notice to queue: the held items naming `id` (in `quiet`, same write) are its content."""
    id: str
    targets: list[str]


@dataclass
class PollWrites:
    """What (a stretch of) one or more polls decided; `Store.write_poll` writes it in one transaction."""
    quiet: list[ItemRecord] = field(default_factory=list)  # seen, no brief: off-topic, too old, LLM-irrelevant
    new_briefs: list[NewBrief] = field(default_factory=list)
    joins: list[StoryJoin] = field(default_factory=list)
    # Each poll's outcome on its feed's row (and the end of its lease), in the same transaction.
    feed_updates: list[FeedUpdate] = field(default_factory=list)
    # Flood notices, queued with the held items they summarise.
    notices: list[NewNotice] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.quiet or self.new_briefs or self.joins or self.feed_updates or self.notices)

    def take(self) -> PollWrites:
        """These writes, moved into a new PollWrites; this one is left empty for what comes next."""
        taken = PollWrites(self.quiet, self.new_briefs, self.joins, self.feed_updates, self.notices)
        self.quiet, self.new_briefs, self.joins, self.feed_updates, self.notices = [], [], [], [], []
        return taken

    @classmethod
    def merged(cls, batch: list[PollWrites]) -> PollWrites:
        return cls(quiet=[r for w in batch for r in w.quiet], new_briefs=[n for w in batch for n in w.new_briefs],
                   joins=[j for w in batch for j in w.joins], feed_updates=[u for w in batch for u in w.feed_updates],
                   notices=[n for w in batch for n in w.notices])


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


@dataclass
class _StoryRows:
    """The rows a write adds or changes for its stories."""
    briefs: list[dict] = field(default_factory=list)
    topics: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    outbox: list[dict] = field(default_factory=list)
    doc_updates: list[dict] = field(default_factory=list)


class PollsStore(ItemsStore):
    def write_poll(self, writes: PollWrites, now: datetime | None = None) -> WrittenPoll:
        """Write what (a stretch of) a poll decided in one transaction: one commit per feed rather
        than one per brief, since commits are most of a cold poll's database time.

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
                    self._write(c, PollWrites(joins=[join]), now)
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
        if writes.quiet or updates or writes.notices:
            with self.engine.begin() as c:
                self._write(c, PollWrites(quiet=writes.quiet, feed_updates=updates, notices=writes.notices), now)
        return written

    def _try_write(self, writes: PollWrites, now: datetime) -> bool:
        try:
            with self.engine.begin() as c:
                self._write(c, writes, now)
            return True
        except (IntegrityError, _StoryGone):
            return False

    def _write(self, c: Connection, w: PollWrites, now: datetime) -> None:
        added = self._insert_entries(c, w, now)
        joins_by_story: dict[str, list[StoryJoin]] = {}
        for join in w.joins:
            joins_by_story.setdefault(join.brief_id, []).append(join)
        new_ids = {new.brief.id for new in w.new_briefs}
        stored_docs = _lock_stored_stories(c, sorted(set(joins_by_story) - new_ids))
        rows = _StoryRows()
        _add_new_stories(rows, w.new_briefs, joins_by_story, now)
        _add_joins_to_stored_stories(rows, stored_docs, joins_by_story, now)
        for notice in w.notices:
            rows.outbox += outbox_insert_rows(NOTICE, notice.id, notice.targets, now)
        if rows.briefs:
            c.execute(INSERT_BRIEF, rows.briefs)
        if rows.doc_updates:
            c.execute(UPDATE_BRIEF_DOC, rows.doc_updates)
        # Ignoring duplicates: a source listed already (republished under another GUID), a topic row
        # already there, a delivery queued already are no-ops.
        self._insert_ignoring_duplicates(c, t.brief_topics, rows.topics)
        self._insert_ignoring_duplicates(c, t.brief_sources, rows.sources)
        self._insert_ignoring_duplicates(c, t.outbox, rows.outbox)
        if added:
            c.execute(COUNT_ITEMS, [{"feed_name": feed, "added": n} for feed, n in added.items()])
        for statement, params in _feed_update_runs(w.feed_updates):
            c.execute(statement, params)

    def _insert_entries(self, c: Connection, w: PollWrites, now: datetime) -> Counter:
        """Record the write's entries; returns how many were really recorded, per feed."""
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
            # this first write also takes the database's write lock, so the stories read next stay
            # as read until commit (PostgreSQL: FOR UPDATE).
            c.execute(INSERT_ITEM, [item_row(rec, now) for rec in claimed])
            added.update(rec.feed for rec in claimed)
        if w.quiet:
            added.update(self._insert_quiet_items(c, w.quiet, now))
        return added


def _feed_update_runs(feed_updates: list[FeedUpdate]) -> list[tuple[Any, list[dict]]]:
    """The updates as (statement, parameter sets), in name order (one lock order for every worker):
    neighbours setting the same fields share one executemany, as a cold poll's feeds all do."""
    runs: list[tuple[Any, list[dict]]] = []
    for feed_update in sorted(feed_updates, key=lambda u: u.name):
        statement, params = feed_update_statement(feed_update)
        if runs and runs[-1][0] is statement and runs[-1][1][0].keys() == params.keys():
            runs[-1][1].append(params)
        else:
            runs.append((statement, [params]))
    return runs


def _lock_stored_stories(c: Connection, ids: list[str]) -> dict[str, dict]:
    """The documents of the stored stories these entries join, locked until commit."""
    if not ids:
        return {}
    docs = dict(c.execute(BRIEFS_TO_JOIN, {"ids": ids}).all())
    if len(docs) < len(ids):
        raise _StoryGone  # pruned meanwhile: roll back, the entries are written one by one
    return docs


def _add_new_stories(rows: _StoryRows, new_briefs: list[NewBrief], joins_by_story: dict[str, list[StoryJoin]],
                     now: datetime) -> None:
    for new in new_briefs:
        brief = new.brief
        if brief.id in joins_by_story:  # joined within this same write: stored with its sources
            brief = brief.model_copy(deep=True)
            for join in joins_by_story[brief.id]:
                brief.add_source(join.source, join.figures, join.topics, join.text)
        rows.briefs.append(dict(id=brief.id, doc=brief.to_json_dict(), mode=brief.mode, created=brief.created,
                                updated=now, published=brief.published, language=new.language,
                                search_text=search_text(brief), signature=new.signature))
        rows.topics += [dict(brief_id=brief.id, topic=topic, created=brief.created) for topic in brief.topics]
        rows.sources += [source_row(brief.id, source, now) for source in brief.sources]
        rows.outbox += outbox_insert_rows("brief", brief.id, new.targets, now)


def _add_joins_to_stored_stories(rows: _StoryRows, stored_docs: dict[str, dict],
                                 joins_by_story: dict[str, list[StoryJoin]], now: datetime) -> None:
    for brief_id in sorted(stored_docs):
        brief = Brief.model_validate(stored_docs[brief_id])
        known_topics = set(brief.topics)
        for join in joins_by_story[brief_id]:
            # The document is read locked: of two workers' joins in one language, the first written fills it.
            brief.add_source(join.source, join.figures, join.topics, join.text)
            rows.sources.append(source_row(brief_id, join.source, now))
        # A topic a later source adds makes the story answer `/brief <that topic>` too.
        rows.topics += [dict(brief_id=brief_id, topic=topic, created=brief.created)
                        for topic in brief.topics if topic not in known_topics]
        rows.doc_updates.append(dict(story_id=brief_id, doc=brief.to_json_dict(), updated=now,
                                     search_text=search_text(brief)))
