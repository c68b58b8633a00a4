"""Batching of the store calls that many polls make at about the same moment: claims asked for in
one turn of the event loop are one statement, and writes handed over within a short window are
one transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.pipeline.story_desk import StoryDesk
from bot.store import FeedState, PollWrites, Store, WrittenPoll

__all__ = ["FeedClaimQueue", "PollWriteQueue"]


class PollWriteQueue:
    """Group commit: the writes polls hand over within a short window are written together, in one
    transaction: a commit costs about as much CPU as the rows it writes, and on a cold poll feeds
    finish in a crowd, so sharing commits saves much of the event loop's CPU.

    One poll's write failing never fails another's: on an error the polls are written one by one.
    Writes are flushed in the order they came, so an entry joining a story decided by another poll
    moments before is written after that story (in the same transaction, or a later one).

    With a `referee` (the poller's story desk), each transaction claims its new stories' keys and
    settles them against stories other workers made meanwhile (bot.store.story_keys)."""

    # How long the first write of a group waits for company: short next to a poll's own network
    # wait, long enough that a busy loop gathers many feeds' writes (a transaction's story-key claim,
    # lookup and commit cost about as much CPU as several feeds' rows).
    WINDOW = 0.05
    # A group is written at once when it is this large (bounds a transaction's size).
    MAX_GROUP = 64

    def __init__(self, store: Store, referee: StoryDesk | None = None):
        self.store = store
        self.referee = referee
        self._queue: list[tuple[PollWrites, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def write(self, writes: PollWrites) -> WrittenPoll:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Writes still queued on another loop belong to polls that ended with it (never stored).
            self._queue, self._timer, self._loop = [], None, loop
        written = loop.create_future()
        self._queue.append((writes, written))
        if len(self._queue) >= self.MAX_GROUP:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.WINDOW, self._flush)
        return await written

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A poll cancelled meanwhile (shutting down) no longer wants its writes: nothing of it is stored.
        queue = [(writes, written) for writes, written in self._queue if not written.done()]
        self._queue = []
        if not queue:
            return
        try:
            results = self._write_group([writes for writes, _ in queue])
        except Exception as exc:
            if len(queue) == 1:
                queue[0][1].set_exception(exc)
                return
            for writes, written in queue:
                try:
                    written.set_result(self._write_alone(writes))
                except Exception as poll_exc:
                    written.set_exception(poll_exc)
            return
        for (_, written), result in zip(queue, results):
            written.set_result(result)

    def _write_group(self, batch: list[PollWrites]) -> list[WrittenPoll]:
        if self.referee is None:
            return self.store.write_polls(batch)
        try:
            return self.store.write_polls_refereed(batch, self.referee)
        finally:
            self.referee.written([new for writes in batch for new in writes.new_briefs])

    def _write_alone(self, writes: PollWrites) -> WrittenPoll:
        if self.referee is None:
            return self.store.write_poll(writes)
        return self._write_group([writes])[0]


class FeedClaimQueue:
    """The claims polls ask for in one turn of the event loop go to the database in one statement:
    `poll_all` starts every feed's poll at once, and a claim is a transaction of its own."""

    def __init__(self, store: Store):
        self.store = store
        self._queue: list[tuple[str, str, timedelta, bool, asyncio.Future]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def claim(self, name: str, owner: str, lease: timedelta, force: bool) -> FeedState | None:
        """`Store.claim_feed_states([name], owner, lease, force=force).get(name)`."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._queue, self._loop = [], loop  # claims still queued on another loop went with it
        claimed = loop.create_future()
        self._queue.append((name, owner, lease, force, claimed))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        try:
            return await claimed
        except asyncio.CancelledError:
            if claimed.done() and not claimed.cancelled() and claimed.exception() is None \
                    and claimed.result() is not None:
                self.store.release_feed(name, owner)  # claimed for a poll that will not run
            raise

    def _flush(self) -> None:
        queue = [entry for entry in self._queue if not entry[-1].done()]  # (a cancelled poll claims nothing)
        self._queue = []
        groups: dict[tuple[str, timedelta, bool], list[tuple[str, asyncio.Future]]] = {}
        for name, owner, lease, force, claimed in queue:
            groups.setdefault((owner, lease, force), []).append((name, claimed))
        for (owner, lease, force), claims in groups.items():
            try:
                states = self.store.claim_feed_states([name for name, _ in claims], owner, lease, force=force)
            except Exception as exc:
                for _, claimed in claims:
                    claimed.set_exception(exc)
                continue
            for name, claimed in claims:
                claimed.set_result(states.get(name))
