"""What runs inside a feed-parser worker process (see bot.pipeline.parser_pool).

Kept apart from the pool so a worker imports only the parser (lxml, text helpers; feedparser when a document needs it)
and the entry analysis (bot.pipeline.facts), not asyncio, aiohttp, pydantic or the rest of the bot: a worker's memory counts
against the bot's.

The worker talks to the bot over two pipes (set up by parser_pool's bootstrap): jobs come in on one, results go out on
the other, each a frame of a 4-byte big-endian length and a pickle: `(job_id, (body, content_type, url, matcher))` in,
`(job_id, AnalysedFeed | str)` out, one result per job, in the order of the jobs.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
import threading
import time

from bot.ingest.parse import FeedParseError, parse_feed
from bot.pipeline.facts import AnalysedFeed, analyse_feed

__all__ = ["parse_for_poll", "parse_in_worker", "worker_main", "worker_setup"]


def worker_setup(bot_pid: int) -> None:
    # Ctrl-C and SIGTERM reach the whole process group; the bot decides when its workers stop
    # (FeedParser.close()), so a worker must not die mid-parse with a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # If the bot itself is killed (kill -9, OOM), nobody will tell the worker to stop, and a worker
    # busy with a long document does not notice its job pipe closing: leave as soon as the parent is gone.
    # The bot's pid comes from the bot, not from getppid() here: the bot may already have died while
    # this worker was still importing, and then getppid() names whoever adopted the orphan.
    def exit_when_orphaned() -> None:
        while os.getppid() == bot_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_when_orphaned, name="orphan-watch", daemon=True).start()
    # The parser's modules are loaded: keep full collections from walking them (see bot.app.container.settle_heap,
    # not imported here: bot.app.container would load the whole bot into the worker).
    gc.collect()
    gc.freeze()


def worker_main(jobs_fd: int, results_fd: int) -> None:
    """Parse jobs until the bot closes the job pipe (or goes away). No job can end the loop: whatever
    a document does to the parser comes back to the bot as that document's error."""
    with open(jobs_fd, "rb") as jobs, open(results_fd, "wb") as results:
        while True:
            head = jobs.read(4)
            if len(head) < 4:
                break  # the bot closed the pipe: FeedParser.close(), or the bot is gone
            size = int.from_bytes(head, "big")
            frame = jobs.read(size)
            if len(frame) < size:
                break
            job_id = None
            try:
                job_id, args = pickle.loads(frame)
                outcome = parse_for_poll(*args)
            except Exception as exc:  # a job must never kill the worker
                outcome = _failure(exc)
            del frame
            try:
                payload = pickle.dumps((job_id, outcome), pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                payload = pickle.dumps((job_id, _failure(exc)), pickle.HIGHEST_PROTOCOL)
            del outcome
            try:
                results.write(len(payload).to_bytes(4, "big"))
                results.write(payload)
                results.flush()
            except OSError:
                break  # the bot closed the result pipe or is gone
    # Nothing left to tidy: skip the interpreter's teardown, which would only make close() wait longer.
    sys.stderr.flush()
    os._exit(0)


def _failure(exc: BaseException) -> str:
    """A parse error's reason for an exception the parser did not expect (its type, text and place)."""
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        where = f" at {os.path.basename(code.co_filename)}:{tb.tb_lineno}"
    return f"the parser failed ({type(exc).__name__}: {str(exc)[:300]}{where})"


def parse_in_worker(body: bytes, content_type: str | None, url: str, matcher=None) -> AnalysedFeed | str:
    """The feed and, with a TopicMatcher, its entries' facts; or why the body is not a usable feed."""
    # FeedParseError does not survive pickling with its two fields; send the reason as text.
    try:
        parsed = parse_feed(body, content_type, url)
    except FeedParseError as exc:
        return exc.reason
    return analyse_feed(parsed, matcher)


def parse_for_poll(body: bytes, content_type: str | None, url: str, matcher=None) -> AnalysedFeed | str:
    """parse_in_worker for a poll: the entries on no topic come without their text. A poll records
    those by identity, title and link alone, and their text is most of what crosses the pipe and
    of what the bot would unpickle and hold (three entries in four on a typical beat)."""
    outcome = parse_in_worker(body, content_type, url, matcher)
    if not isinstance(outcome, str) and matcher is not None:
        for entry, facts in zip(outcome.feed.entries, outcome.facts):
            if not facts.topics:
                entry.text = ""
    return outcome
