"""Which story an item belongs to: decided in memory for the whole process, settled with other
workers when a new story is written.

Two outlets polled at the same moment must still make one story (and one LLM call): the desk
knows the recent stories (its index, topped up from the store) and the stories being made right
now (pending), so an item either joins a known story, waits for the one being made and joins it,
or starts a new one that later items wait for.

Nothing here awaits between looking a story up and reserving a new one, so on one event loop no
other poll can slip in between: no lock is needed.

An item never joins a story its own feed already told (the index knows each story's feeds): a
story's first feed is in its stored signature, the feeds that joined it are known to the process
that joined them.

Other workers' stories are read every few seconds, and once more when a new story is written: the
write claims the story's keys and asks the desk (its referee) whether a story another worker filed
under them meanwhile is the same one; if so the item joins that story instead, and whatever waited
on the new story follows it there (bot/store/story_keys.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.analyse.stories import STORY_WINDOW, StoryIndex, StorySignature, find_same_story
from bot.models import utcnow
from bot.store import NewBrief, Store

__all__ = ["StoryDesk", "NewStory"]

# How often other workers' new stories are read into this process's story index.
STORY_REFRESH = timedelta(seconds=5)
# How far each read of other workers' stories reaches back before the last one: their clocks and
# commits lag a little.
READ_OVERLAP = timedelta(minutes=10)


@dataclass
class NewStory:
    """A story being made: set `brief_id` once its brief is decided (left None: no brief came of it)."""

    brief_id: str | None = None


class StoryDesk:
    def __init__(self, store: Store, worker_id: str):
        self._store = store
        self.worker_id = worker_id
        # Stories being made right now: (signature, future resolving to the brief id or None, when
        # it was found to be new).
        self._pending: list[tuple[StorySignature, asyncio.Future, datetime]] = []
        # Signatures never change once a story exists, so they are read from the store once.
        self._index = StoryIndex()
        self._read_at: datetime | None = None
        # New stories not yet written: their signature, when they were found to be new, their keys.
        self._unwritten: dict[str, tuple[StorySignature, datetime, set[str]]] = {}
        # New stories that turned out to be another worker's story: their id -> that story's id.
        self._turned: dict[str, str] = {}

    async def existing_story(self, sig: StorySignature, before_waiting: Callable[[], Awaitable[None]]) -> str | None:
        """The id of the story `sig` belongs to, waiting for one being made if need be; None when it is
        a new story. `before_waiting` runs before any wait (the caller writes its decisions so far, so
        that no two polls wait on each other's unwritten stories). Reserve a None at once with `making`."""
        while True:
            match = self._recent_stories(utcnow()).find_same_story(sig)
            if match is not None:
                return match
            pending = next((fut for psig, fut, _ in self._pending if find_same_story(sig, [("pending", psig)])),
                           None)
            if pending is None:
                return None
            # Another outlet's version of this story is being made: wait and join it.
            await before_waiting()
            match = await asyncio.shield(pending)
            if match is not None:
                return match
            # that attempt produced no brief: decide again

    @contextmanager
    def making(self, sig: StorySignature) -> Iterator[NewStory]:
        """Reserve a new story for `sig` while its brief is made: items of the same story wait for it."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((sig, future, utcnow()))
        story = NewStory()
        try:
            yield story
        finally:
            self._pending = [entry for entry in self._pending if entry[1] is not future]
            if not future.done():
                future.set_result(story.brief_id)

    def add(self, brief_id: str, sig: StorySignature) -> None:
        """A story decided here: in the index at once, so the feed's later entries may join it."""
        self._index.add(brief_id, sig)
        found_new = next((at for psig, _, at in self._pending if psig is sig), None)
        # Right after `add`, whose lookup the signature's features come from.
        self._unwritten[brief_id] = (sig, found_new or utcnow(), self._index.shared_keys(sig))

    def joined(self, brief_id: str, feed: str) -> None:
        """An item of `feed` joins the story: the feed's later items are other stories."""
        self._index.joined(brief_id, feed)

    def language_of(self, story_id: str) -> str | None:
        """The language the story's first item is written in, when the story is in the index."""
        return self._index.language_of(story_id)

    def discard(self, brief_id: str) -> None:
        """A story that was not stored after all: later entries must not join it."""
        self._index.discard(brief_id)
        self._unwritten.pop(brief_id, None)

    def written(self, new_briefs: list[NewBrief]) -> None:
        """These new stories' write is over (stored, turned into joins or dropped)."""
        for new in new_briefs:
            self._unwritten.pop(new.brief.id, None)

    # ---- the referee of the write that stores new stories (bot.store.story_keys.StoryReferee)
    def keys_of(self, new: NewBrief) -> set[str]:
        unwritten = self._unwritten.get(new.brief.id)
        return unwritten[2] if unwritten else self._index.shared_keys(self._signature(new))

    def others_since(self, new_briefs: list[NewBrief]) -> datetime:
        """Other workers' stories filed before this were in the index when these were found new: it
        reads them every STORY_REFRESH, reaching READ_OVERLAP back."""
        now = utcnow()
        found_new = min((self._unwritten[new.brief.id][1] if new.brief.id in self._unwritten else now
                         for new in new_briefs), default=now)
        return found_new - STORY_REFRESH - READ_OVERLAP

    def knows(self, story_id: str) -> bool:
        return story_id in self._index

    def settle(self, new_briefs: list[NewBrief], others: set[str], signatures: dict[str, dict]) -> dict[str, str]:
        """The new stories that match one of `others` (other workers' stories sharing their keys):
        they leave the index, and their items and whatever waited on them join that story."""
        for story_id, signature in signatures.items():
            self._index.add(story_id, StorySignature.from_dict(signature))
        decided = {}
        for new in new_briefs:
            story_id = self._turned.get(new.brief.id)  # turned in a write that was then redone
            if story_id is None:
                story_id = self._index.find_same_story(self._signature(new)) if others else None
                if story_id is None or story_id not in others:
                    continue
            decided[new.brief.id] = self._turned[new.brief.id] = story_id
            self._index.discard(new.brief.id)
            self._index.joined(story_id, new.item.feed)
        return decided

    def story_of(self, story_id: str) -> str:
        return self._turned.get(story_id, story_id)

    def _signature(self, new: NewBrief) -> StorySignature:
        unwritten = self._unwritten.get(new.brief.id)
        return unwritten[0] if unwritten else StorySignature.from_dict(new.signature or {})

    def _recent_stories(self, now: datetime) -> StoryIndex:
        """The story index, topped up with stories other workers (or earlier runs) created.

        This process's own stories enter the index as they are made; other workers' stories are
        read every few seconds (one made in the same second as one of ours is found when ours is
        written: see `settle`)."""
        if self._read_at is not None and now - self._read_at < STORY_REFRESH:
            return self._index
        since = now - STORY_WINDOW - STORY_WINDOW / 2 if self._read_at is None else self._read_at - READ_OVERLAP
        for story_id, signature, _lang in self._store.story_candidates(since, limit=None, known=self._index):
            self._index.add(story_id, StorySignature.from_dict(signature))
        self._read_at = now
        self._index.evict_published_before(now - 2 * STORY_WINDOW)
        return self._index
