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
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot.feeds.parse import FeedParseError, ParsedFeed, parse_feed

log = logging.getLogger("briefbot.parse")

__all__ = ["FeedParser", "default_parse_workers"]


def default_parse_workers() -> int:
    """One worker when this process may use a second core, else parse inline."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return 1 if usable >= 2 else 0


def _ignore_stop_signals() -> None:
    # Ctrl-C and SIGTERM reach the whole process group; the bot decides when its workers stop
    # (close() below), so a worker must not die mid-parse with a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _parse_in_worker(body: bytes, content_type: str | None, url: str) -> ParsedFeed | str:
    # FeedParseError does not survive pickling with its two fields; send the reason as text.
    try:
        return parse_feed(body, content_type, url)
    except FeedParseError as exc:
        return exc.reason


class FeedParser:
    """`await parse(body, content_type, url)`: parse_feed, inline (workers=0) or in worker processes."""

    def __init__(self, workers: int):
        self.workers = max(0, workers)
        self._executor: ProcessPoolExecutor | None = None

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
                                                         initializer=_ignore_stop_signals)
                try:
                    return self._executor.submit(fn, *args)
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

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._executor is pool:
            self._executor = None
            pool.shutdown(wait=False, cancel_futures=True)

    async def parse(self, body: bytes, content_type: str | None, url: str) -> ParsedFeed:
        job = self._submit(_parse_in_worker, body, content_type, url)
        if job is None:
            return parse_feed(body, content_type, url)
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
