"""Feed parsing on another core.

A poll of many feeds is CPU-bound in one event loop: parsing (XML, HTML to text, boilerplate) is a
pure function of the body, so it runs in a worker process while the loop goes on fetching,
matching stories and writing to the store. A thread would not help (parsing holds the GIL).

Workers are started with "spawn", not fork: the bot process holds database connections, sockets
and scheduler threads that a forked child must not inherit. A worker that dies (a parser crash on
a hostile document, the OOM killer) costs only the feeds it was parsing at that moment: those
polls are recorded as parse errors (retried at the next interval) and the next parse starts a
fresh worker.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot.feeds.parse import FeedParseError, ParsedFeed
from bot.feeds.parse_worker import parse_in_worker, worker_setup

log = logging.getLogger("briefbot.parse")

__all__ = ["FeedParser", "default_parse_workers"]


def default_parse_workers() -> int:
    """One worker when this process may use a second core, else parse inline."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return 1 if usable >= 2 else 0


class FeedParser:
    """`await parse(body, content_type, url, matcher)`: parse_feed (and the entries' facts), inline
    (workers=0) or in worker processes."""

    # Pools in a row whose workers died before finishing any job: no document does that; a worker
    # that cannot start does (the code on disk replaced under a running bot, a broken install).
    BARREN_POOLS_BEFORE_INLINE = 3

    def __init__(self, workers: int):
        self.workers = max(0, workers)
        self._executor: ProcessPoolExecutor | None = None
        self._pool_served = False  # has the current pool finished a job?
        self._barren_pools = 0

    def start(self) -> None:
        """Start the workers now, so their imports overlap the bot's start-up, not its first poll."""
        for _ in range(self.workers):
            self._submit(int)  # a no-op job: the pool spawns a worker for it

    def _submit(self, fn, *args) -> Future | None:
        """Submit to the worker pool (started on first use); None once parsing has fallen back to inline."""
        if not self.workers:
            return None
        try:
            for attempt in (1, 2):
                if self._executor is None:
                    self._executor = ProcessPoolExecutor(max_workers=self.workers,
                                                         mp_context=multiprocessing.get_context("spawn"),
                                                         initializer=worker_setup, initargs=(os.getpid(),))
                    self._pool_served = False
                pool = self._executor
                try:
                    job = pool.submit(fn, *args)
                    job.add_done_callback(lambda done, pool=pool: self._note_served(pool, done))
                    return job
                except BrokenProcessPool:
                    # A worker died under another feed a moment ago: start a fresh pool, once.
                    if attempt == 2:
                        raise
                    self._discard(self._executor)
        except (OSError, RuntimeError) as exc:
            # No worker can start here (process limits, an unguarded __main__ under spawn): no
            # document is at fault, so parse inline from now on rather than fail every feed.
            log.warning("cannot start a feed parser process (%s); parsing in the main process", exc)
            self.close()
            self.workers = 0
            return None

    def _note_served(self, pool: ProcessPoolExecutor, job: Future) -> None:
        # Runs in the pool's management thread; a plain flag write is safe under the GIL.
        if pool is self._executor and not job.cancelled() and job.exception() is None:
            self._pool_served = True

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._executor is not pool:
            return  # already replaced by another feed's failure
        self._executor = None
        pool.shutdown(wait=False, cancel_futures=True)
        self._barren_pools = 0 if self._pool_served else self._barren_pools + 1
        if self._barren_pools >= self.BARREN_POOLS_BEFORE_INLINE:
            log.error("feed parser processes died %d times in a row before finishing any document; parsing in "
                      "the main process from now on (restart the bot after an upgrade)", self._barren_pools)
            self.workers = 0

    async def parse(self, body: bytes, content_type: str | None, url: str, matcher=None) -> ParsedFeed:
        """parse_feed; with a TopicMatcher, each entry also gets its facts (bot.entries) computed
        where it is parsed."""
        job = self._submit(parse_in_worker, body, content_type, url, matcher)
        if job is None:
            outcome = parse_in_worker(body, content_type, url, matcher)  # the same work, inline
        else:
            pool = self._executor
            try:
                outcome = await asyncio.wrap_future(job)
            except BrokenProcessPool:
                # Not retried inline: if this document crashed the parser, it would crash the bot too.
                self._discard(pool)
                log.error("feed parser process died while parsing %s; starting a new one", url)
                raise FeedParseError(url, "the parser process died while reading this document") from None
        if isinstance(outcome, str):
            raise FeedParseError(url, outcome)
        return outcome

    def worker_pids(self) -> list[int]:
        """The live worker processes (for CPU and memory accounting)."""
        if self._executor is None:
            return []
        return [p.pid for p in (self._executor._processes or {}).values() if p.pid]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
