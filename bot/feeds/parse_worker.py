"""What runs inside a feed-parser worker process (see bot.feeds.parse_pool).

Kept apart from the pool so a worker imports only the parser (lxml, text helpers; feedparser when a document needs it)
and the entry analysis (bot.entries), not asyncio, aiohttp, pydantic or the rest of the bot: a worker's memory counts
against the bot's.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from bot.entries import add_entry_facts
from bot.feeds.parse import FeedParseError, ParsedFeed, parse_feed

__all__ = ["parse_in_worker", "worker_setup"]


def worker_setup(bot_pid: int) -> None:
    # Ctrl-C and SIGTERM reach the whole process group; the bot decides when its workers stop
    # (FeedParser.close()), so a worker must not die mid-parse with a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # If the bot itself is killed (kill -9, OOM), nobody will tell the worker to stop, and a worker
    # blocked on its job queue does not notice: leave as soon as the parent is gone. The bot's pid
    # comes from the bot, not from getppid() here: the bot may already have died while this worker
    # was still importing, and then getppid() names whoever adopted the orphan.
    def exit_when_orphaned() -> None:
        while os.getppid() == bot_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_when_orphaned, name="orphan-watch", daemon=True).start()


def parse_in_worker(body: bytes, content_type: str | None, url: str, matcher=None) -> ParsedFeed | str:
    # FeedParseError does not survive pickling with its two fields; send the reason as text.
    try:
        parsed = parse_feed(body, content_type, url)
    except FeedParseError as exc:
        return exc.reason
    return add_entry_facts(parsed, matcher) if matcher is not None else parsed
