"""Which story an item belongs to, decided in memory for the whole process.

Two outlets polled at the same moment must still make one story (and one LLM call): the desk
knows the recent stories (its index, topped up from the store) and the stories being made right
now (pending), so an item either joins a known story, waits for the one being made and joins it,
or starts a new one that later items wait for.

Nothing here awaits between looking a story up and reserving a new one, so on one event loop no
other poll can slip in between: no lock is needed.

An item never joins a story its own feed already told (the index knows each story's feeds): a
story's first feed is in its stored signature, the feeds that joined it are known to the process
that joined them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.analyse.stories import STORY_WINDOW, StoryIndex, StorySignature, find_same_story
from bot.models import utcnow
from bot.store import Store

__all__ = ["StoryDesk", "NewStory"]

# How often other workers' new stories are read into this process's story index.
STORY_REFRESH = timedelta(seconds=5)


@dataclass
class NewStory:
    """A story being made: set `brief_id` once its brief is decided (left None: no brief came of it)."""

    brief_id: str | None = None


class StoryDesk:
    def __init__(self, store: Store):
        self._store = store
        # Stories being made right now: (signature, future resolving to the brief id or None).
        self._pending: list[tuple[StorySignature, asyncio.Future]] = []
        # Signatures never change once a story exists, so they are read from the store once.
        self._index = StoryIndex()
        self._read_at: datetime | None = None

    async def existing_story(self, sig: StorySignature, before_waiting: Callable[[], Awaitable[None]]) -> str | None:
        """The id of the story `sig` belongs to, waiting for one being made if need be; None when it is
        a new story. `before_waiting` runs before any wait (the caller writes its decisions so far, so
        that no two polls wait on each other's unwritten stories). Reserve a None at once with `making`."""
        while True:
            match = self._recent_stories(utcnow()).find_same_story(sig)
            if match is not None:
                return match
            pending = next((fut for psig, fut in self._pending if find_same_story(sig, [("pending", psig)])), None)
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
        self._pending.append((sig, future))
        story = NewStory()
        try:
            yield story
        finally:
            self._pending = [(s, f) for s, f in self._pending if f is not future]
            if not future.done():
                future.set_result(story.brief_id)

    def add(self, brief_id: str, sig: StorySignature) -> None:
        """A story decided here: in the index at once, so the feed's later entries may join it."""
        self._index.add(brief_id, sig)

    def joined(self, brief_id: str, feed: str) -> None:
        """An item of `feed` joins the story: the feed's later items are other stories."""
        self._index.joined(brief_id, feed)

    def discard(self, brief_id: str) -> None:
        """A story that was not stored after all: later entries must not join it."""
        self._index.discard(brief_id)

    def _recent_stories(self, now: datetime) -> StoryIndex:
        """The story index, topped up with stories other workers (or earlier runs) created.

        This process's own stories enter the index as they are made; other workers' stories are
        read every few seconds (a same-second race between workers is a documented residual)."""
        if self._read_at is not None and now - self._read_at < STORY_REFRESH:
            return self._index
        # Overlap the last read generously: other workers' clocks and commits lag a little.
        since = now - STORY_WINDOW - STORY_WINDOW / 2 if self._read_at is None \
            else self._read_at - timedelta(minutes=10)
        for story_id, signature, _lang in self._store.story_candidates(since, limit=None):
            if story_id not in self._index:
                self._index.add(story_id, StorySignature.from_dict(signature))
        self._read_at = now
        self._index.evict_published_before(now - 2 * STORY_WINDOW)
        return self._index
