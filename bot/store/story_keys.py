"""Story matching shared by workers: the keys stories are filed under, and the claim a write takes on
the keys of the stories it makes.

Two outlets of one story polled by two workers at the same moment each find no stored story and
each make a brief. So a write that makes stories first claims their keys (PostgreSQL: advisory
locks held until commit, taken in one order; SQLite: the database's write lock, taken before
anything is read), then reads which stories other workers filed under those keys lately, and lets
its referee (the worker's story desk) turn a new story that is one of those into a join to it. The
claim lasts until the new stories and their keys are committed, so a worker waiting on it reads
them when its turn comes. Any two stories that can match share a key (see the referee's keys).
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy import Select, bindparam, delete, insert, select, text, union
from sqlalchemy.engine import Connection

from bot.store import schema as t
from bot.store.briefs import NewBrief, StoryJoin
from bot.store.polls import PollsStore, PollWrites, WrittenPoll

__all__ = ["StoryKeysStore", "StoryReferee", "story_key"]

# A batch's keys share this many PostgreSQL advisory locks at most: a cold poll's group commit can
# make thousands of stories, and every lock held takes a slot of the server's shared lock table.
LOCK_SLOTS = 256
# Namespaces the slots among the server's other advisory locks (the two-int form).
LOCK_CLASS = 0x5B1E
# Keys per lookup: a large group commit has thousands, more than a statement may bind.
KEYS_PER_QUERY = 2000


class StoryReferee(Protocol):
    """What a worker knows of stories: their keys, which it has, and whether its new ones are
    other workers' stories after all."""

    worker_id: str

    def keys_of(self, new: NewBrief) -> set[str]:
        """Keys that any story matching `new` shares with it."""

    def others_since(self, new_briefs: list[NewBrief]) -> datetime:
        """Other workers' stories filed before this were known when these were decided."""

    def knows(self, story_id: str) -> bool: ...

    def settle(self, new_briefs: list[NewBrief], others: set[str], signatures: dict[str, dict]) -> dict[str, str]:
        """The new stories that are one of `others` (ids of other workers' stories under their
        keys; `signatures` of those it did not know): new brief id -> that story's id."""

    def story_of(self, story_id: str) -> str:
        """The story to join for `story_id` (itself, or the story it turned out to be)."""


def story_key(key: str) -> int:
    """A key as the signed 64-bit integer it is filed under."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass
class _Refereeing:
    referee: StoryReferee
    # New brief id -> the join it was written as (the latest decision for it).
    turned: dict[str, StoryJoin] = field(default_factory=dict)


_REFEREEING: ContextVar[_Refereeing | None] = ContextVar("story_refereeing", default=None)

_k = t.story_keys.c


def _others_under_keys(owner_side) -> Select:
    return (select(_k.brief_id).join(t.briefs, t.briefs.c.id == _k.brief_id)
            .where(_k.key.in_(bindparam("keys", expanding=True)), owner_side,
                   t.briefs.c.created >= bindparam("since")))


# Other workers' owners sort before or after this worker's: two ranges of the primary key per key,
# so this worker's own rows (most of them, on a busy beat) are never read.
_OTHERS_UNDER_KEYS = union(_others_under_keys(_k.owner < bindparam("owner")),
                           _others_under_keys(_k.owner > bindparam("owner")))
_SIGNATURES = select(t.briefs.c.id, t.briefs.c.signature).where(t.briefs.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_KEYS = insert(t.story_keys)
# Takes SQLite's write lock before the transaction reads anything (one primary-key lookup, no row).
_SQLITE_WRITE_LOCK = delete(t.story_keys).where(_k.key == 0, _k.owner == "")
# In the order given (ascending), so two workers never wait on each other's slots in a cycle.
_PG_LOCK_SLOTS = text("SELECT pg_advisory_xact_lock(CAST(:cls AS integer), slot) "
                      "FROM unnest(CAST(:slots AS integer[])) WITH ORDINALITY AS u(slot, n) ORDER BY n")


class StoryKeysStore(PollsStore):
    def write_polls_refereed(self, batch: list[PollWrites], referee: StoryReferee) -> list[WrittenPoll]:
        """`write_polls`, with the new stories claimed and settled by `referee` inside each
        transaction: one another worker made meanwhile is written as a join to it."""
        refereeing = _Refereeing(referee)
        token = _REFEREEING.set(refereeing)
        try:
            results = self.write_polls(batch)
        finally:
            _REFEREEING.reset(token)
        for written in results:
            turned = [new for new in written.briefs if new.brief.id in refereeing.turned]
            for new in turned:
                written.briefs.remove(new)
                written.joins.append(refereeing.turned[new.brief.id])
        return results

    def _write(self, c: Connection, w: PollWrites, now: datetime) -> None:
        refereeing = _REFEREEING.get()
        if refereeing is None:
            super()._write(c, w, now)
            return
        referee = refereeing.referee
        keys: dict[str, set[int]] = {}
        if w.new_briefs:
            keys = {new.brief.id: {story_key(k) for k in referee.keys_of(new)} for new in w.new_briefs}
            w = self._settle(c, w, keys, refereeing)
        for join in w.joins:
            join.brief_id = referee.story_of(join.brief_id)
        super()._write(c, w, now)
        rows = [dict(key=key, owner=referee.worker_id, brief_id=new.brief.id)
                for new in w.new_briefs for key in sorted(keys[new.brief.id])]
        if rows:
            c.execute(_INSERT_KEYS, rows)

    def _settle(self, c: Connection, w: PollWrites, keys: dict[str, set[int]], refereeing: _Refereeing) -> PollWrites:
        """Claim the new stories' keys, read the stories other workers filed under them, and turn
        each new story the referee finds among those into a join."""
        referee = refereeing.referee
        every_key = sorted(set().union(*keys.values()))
        if not every_key:
            return w  # stories without keys match no other story
        others, signatures = self._claim_and_read(c, every_key, referee, w.new_briefs)
        decided = referee.settle(w.new_briefs, others, signatures)
        for new in w.new_briefs:
            refereeing.turned.pop(new.brief.id, None)
        if not decided:
            return w
        kept, joins = [], list(w.joins)
        for new in w.new_briefs:
            story_id = decided.get(new.brief.id)
            if story_id is None:
                kept.append(new)
                continue
            join = StoryJoin(story_id, replace(new.item, status="merged"), new.brief.sources[0],
                             list(new.brief.figures), list(new.brief.topics), new.source_text())
            refereeing.turned[new.brief.id] = join
            joins.append(join)
        return replace(w, new_briefs=kept, joins=joins)

    def _claim_and_read(self, c: Connection, every_key: list[int], referee: StoryReferee,
                        new_briefs: list[NewBrief]) -> tuple[set[str], dict[str, dict]]:
        """Take the keys' claim for this transaction, then read the ids of the stories other workers
        filed under them, and the signatures of those the referee does not know."""
        if self.is_postgres:
            slots = sorted({key % LOCK_SLOTS for key in every_key})
            c.execute(_PG_LOCK_SLOTS, {"cls": LOCK_CLASS, "slots": slots})
        else:
            c.execute(_SQLITE_WRITE_LOCK)
        since = referee.others_since(new_briefs)
        others: set[str] = set()
        for start in range(0, len(every_key), KEYS_PER_QUERY):
            others.update(c.execute(_OTHERS_UNDER_KEYS, {"keys": every_key[start:start + KEYS_PER_QUERY],
                                                         "owner": referee.worker_id, "since": since}).scalars())
        unknown = sorted(story_id for story_id in others if not referee.knows(story_id))
        if not unknown:
            return others, {}
        return others, {r.id: r.signature or {} for r in c.execute(_SIGNATURES, {"ids": unknown})}
