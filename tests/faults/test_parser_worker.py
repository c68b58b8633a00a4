"""Faults around the feed-parser worker process: it dies mid-parse, dies between feeds, or the bot
itself is killed. The bot loses at most the feeds being parsed at that moment, never the process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.ingest.parse import FeedParseError
from bot.pipeline.parser_pool import FeedParser
from feedgen import Entry, rss
from waits import async_wait_until, wait_until

URL = "https://wire.example/feed.xml"
ENTRIES = [Entry("US tariff on magnets rises to 25%", "The duty takes effect on May 1.", guid="t1"),
           Entry("稀土出口管制收紧", "商务部公告：7类中重稀土实施出口管制。", guid="z1")]


def _bytes_read(pid: int) -> int:
    """What the process has read so far, from any file or pipe (Linux's /proc/<pid>/io)."""
    io = Path(f"/proc/{pid}/io").read_text()
    return int(next(line.split()[1] for line in io.splitlines() if line.startswith("rchar:")))


def _gone(pid: int) -> bool:
    """The process has exited (no longer listed, or a zombie its reaped-by-nobody parent left)."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@pytest.mark.fault("parser worker: killed mid-parse")
async def test_a_worker_dying_mid_parse_fails_that_feed_only_and_is_replaced():
    parser = FeedParser(workers=1)
    try:
        await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        (pid,) = parser.worker_pids()
        # A document that keeps the worker busy for about two seconds (60 paragraphs per item).
        big = rss([Entry(f"Tariff item {i}", "<p>Duty text.</p> " * 60, guid=f"g{i}") for i in range(2000)])
        already_read = _bytes_read(pid)
        in_flight = asyncio.create_task(parser.parse(big, "application/rss+xml", URL))
        # Once the worker has taken the whole document off its pipe it is parsing it: stop it there
        # (so it cannot finish first, however fast the machine) and kill it, as the OOM killer would.
        await async_wait_until(lambda: _bytes_read(pid) - already_read >= len(big), "the worker to read the document")
        os.kill(pid, signal.SIGSTOP)
        assert not in_flight.done()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(FeedParseError) as raised:
            await in_flight
        assert raised.value.url == URL and "parser process died" in raised.value.reason
        # The next feed gets a fresh worker.
        parsed = await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        assert [e.title for e in parsed.feed.entries] == [e.title for e in ENTRIES]
        assert parser.worker_pids() and parser.worker_pids() != [pid]
    finally:
        parser.close()


@pytest.mark.fault("parser worker: died between feeds")
async def test_a_worker_that_died_between_feeds_costs_nothing():
    parser = FeedParser(workers=1)
    try:
        await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        (pid,) = parser.worker_pids()
        os.kill(pid, signal.SIGKILL)
        await async_wait_until(lambda: pid not in parser.worker_pids(),
                               "the parser to notice its worker's death (the worker's pipe closed)")
        parsed = await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        assert len(parsed.feed.entries) == 2 and parser.workers == 1
        assert parser.worker_pids() and pid not in parser.worker_pids()
    finally:
        parser.close()




@pytest.mark.parametrize("moment", [
    pytest.param("after a parse", marks=pytest.mark.fault("parser worker: the bot is killed -9")),
    pytest.param("while the worker starts", marks=pytest.mark.fault("parser worker: the bot is killed -9 "
                                                                    "while its worker is still starting")),
])
def test_worker_leaves_when_the_bot_is_killed(tmp_path, moment):
    # kill -9 of the bot must not leave an orphaned parser process behind (it ignores SIGTERM).
    first = ("    await parser.parse(sys.stdin.buffer.read(), 'application/rss+xml', 'https://wire.example/f')\n"
             if moment == "after a parse" else "    parser.start()\n")
    script = tmp_path / "bot_like.py"
    script.write_text(
        "import asyncio, sys\n"
        "from bot.pipeline.parser_pool import FeedParser\n"
        "async def main():\n"
        "    parser = FeedParser(workers=1)\n"
        + first +
        "    print(parser.worker_pids()[0], flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n")
    bot = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    bot.stdin.write(rss(ENTRIES))
    bot.stdin.close()
    worker = int(bot.stdout.readline())
    os.kill(bot.pid, signal.SIGKILL)
    bot.wait(10)
    try:  # the worker checks for its parent every second
        wait_until(lambda: _gone(worker), "the parser worker to leave after the bot was killed")
    except AssertionError:
        os.kill(worker, signal.SIGKILL)
        raise


@pytest.mark.fault("parser worker: cannot start (code replaced on disk under a running bot)")
def test_workers_that_cannot_start_fall_back_to_inline_parsing(tmp_path):
    # A copy of the package, so the test can do what `pip install -U` does under a running bot: the
    # running process keeps the old code, new workers import the new code, and the names differ.
    import shutil

    import bot

    shutil.copytree(Path(bot.__file__).parent, tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss(ENTRIES))
    script = tmp_path / "bot_like.py"
    script.write_text(
        "import asyncio, logging, pathlib, sys\n"
        "from bot.ingest.parse import FeedParseError\n"
        "from bot.pipeline.parser_pool import FeedParser\n"
        "async def main():\n"
        "    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)\n"
        "    body = pathlib.Path(sys.argv[1]).read_bytes()\n"
        "    parser = FeedParser(workers=1)\n"
        "    await parser.parse(body, 'application/rss+xml', 'https://wire.example/f')\n"
        "    worker_py = pathlib.Path(sys.argv[2])\n"
        "    worker_py.write_text(worker_py.read_text().replace('def worker_setup', 'def renamed_setup'))\n"
        "    parser.close()  # workers started from now on import the changed module\n"
        "    outcomes = []\n"
        "    for _ in range(6):\n"
        "        try:\n"
        "            parsed = await parser.parse(body, 'application/rss+xml', 'https://wire.example/f')\n"
        "            outcomes.append(f'ok:{len(parsed.feed.entries)}')\n"
        "        except FeedParseError as exc:\n"
        "            outcomes.append('error')\n"
        "    print(' '.join(outcomes), parser.workers, flush=True)\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n")
    done = subprocess.run([sys.executable, str(script), str(feed), str(tmp_path / "bot" / "pipeline" / "parser_worker.py")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    *outcomes, workers = done.stdout.split()
    # Three workers in a row die before finishing anything (those feeds fail, to be retried); then inline parsing.
    assert outcomes == ["error", "error", "error", "ok:2", "ok:2", "ok:2"] and workers == "0"
    assert "parsing in the main process from now on" in done.stderr
