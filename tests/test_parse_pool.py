"""Feed parsing in a worker process: same results as inline, errors named. (A worker that dies:
tests/faults/test_parser_worker.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import pytest

from bot.config import ConfigError, Env
from bot.pipeline.facts import analyse_feed
from bot.ingest.parse import FeedParseError, parse_feed
from bot.pipeline.parser_pool import FeedParser
from bot.pipeline.parser_worker import parse_for_poll, parse_in_worker
from bot.app.container import build_app, close_app, make_poller
from bot.analyse.topics import TopicMatcher
from feedgen import Entry, make_env, make_settings, rss
from loopback import Reply
from waits import async_wait_until, wait_until

URL = "https://wire.example/feed.xml"
ENTRIES = [Entry("US tariff on magnets rises to 25%", "The duty takes effect on May 1.", guid="t1"),
           Entry("稀土出口管制收紧", "商务部公告：7类中重稀土实施出口管制。", guid="z1")]


async def test_worker_process_gives_the_inline_result_and_names_bad_documents():
    parser = FeedParser(workers=1)
    try:
        for body in (rss(ENTRIES), rss(ENTRIES, encoding="gbk")):
            parsed, facts = await parser.parse(body, "application/rss+xml", URL)
            assert parsed == parse_feed(body, "application/rss+xml", URL) and facts == []
        with pytest.raises(FeedParseError) as raised:
            await parser.parse(b"<html><body>Not a feed</body></html>", "text/html", URL)
        assert raised.value.url == URL and "HTML page" in raised.value.reason
    finally:
        parser.close()


async def test_worker_works_out_the_entries_facts_as_inline(tmp_path):
    """Identity, topics, language and numbers come from the worker process: the same as worked out
    inline. An entry on no topic comes without its text (a poll records it by identity and title)."""
    matcher = TopicMatcher(make_settings(tmp_path, []))
    off_topic = Entry("City wins the cup final 3-1", "A late goal in front of 60,000 fans.", guid="f1")
    parser = FeedParser(workers=1)
    try:
        for body in (rss(ENTRIES + [off_topic]), rss(ENTRIES, encoding="gbk")):
            got = await parser.parse(body, "application/rss+xml", URL, matcher)
            inline = analyse_feed(parse_feed(body, "application/rss+xml", URL), matcher)
            assert got.facts == inline.facts and parser.worker_pids()
            assert [e.text for e in got.feed.entries] == [e.text if f.topics else "" for e, f in
                                                          zip(inline.feed.entries, inline.facts)]
            assert [(e.title, e.link, e.guid) for e in got.feed.entries] == \
                [(e.title, e.link, e.guid) for e in inline.feed.entries]
        assert "60,000 fans" in parse_in_worker(rss([off_topic]), "application/rss+xml", URL, matcher).feed.entries[0].text
        tariff, rare_earth, football = (await parser.parse(rss(ENTRIES + [off_topic]), "application/rss+xml", URL,
                                                           matcher)).facts
        assert tariff.topics == ["tariff"] and tariff.lang == "en"
        assert (25.0, "%") in tariff.story_numbers
        assert rare_earth.topics == ["rare-earth"] and rare_earth.lang == "zh"
        assert football.topics == [] and football.story_numbers == []  # off-topic: no numbers needed
        assert len({tariff.ident.item_key, rare_earth.ident.item_key, football.ident.item_key}) == 3
    finally:
        parser.close()


async def test_poll_through_a_parser_process_briefs_items(tmp_path, http_server):
    http_server.route("/wire.xml", Reply(200, rss(ENTRIES), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/wire.xml")}])
    app = build_app(settings, make_env(f"sqlite:///{tmp_path / 'b.db'}", parse_workers=1))
    try:
        (report,) = await make_poller(app).poll_all()
        assert report.outcome == "ok" and len(report.new_briefs) == 2
        assert app.parser.worker_pids()  # it really went through a worker process
    finally:
        await close_app(app)
        app.store.close()


def test_parse_workers_from_the_environment():
    assert Env.from_environ({"BRIEFBOT_PARSE_WORKERS": "0"}).parse_workers == 0
    assert Env.from_environ({}).parse_workers is None  # auto: one worker when a second core is usable
    with pytest.raises(ConfigError, match="BRIEFBOT_PARSE_WORKERS"):
        Env.from_environ({"BRIEFBOT_PARSE_WORKERS": "two"})


async def _started(submitted: list, parse):
    """Await `parse`, first noting in `submitted` that it was handed over: its first step (job
    written to a worker, or queued for a slot) has run by the time the test sees the note."""
    submitted.append(parse)
    return await parse


def _worker_children() -> list[int]:
    """Processes whose parent is this one and that run a feed-parser worker (live or zombie)."""
    me, found = str(os.getpid()), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2:].split()[1] == me and (b"parser_worker" in cmdline or not cmdline):
            found.append(int(proc.name))
    return found


async def test_many_concurrent_parses_through_two_workers_give_the_inline_results(tmp_path):
    matcher = TopicMatcher(make_settings(tmp_path, []))
    docs = []
    for i in range(200):
        if i % 7 == 3:
            body, ctype = f"<html><body>Page {i}, not a feed</body></html>".encode(), "text/html"
        elif i % 11 == 5:
            body, ctype = b"\x00\x01 binary junk " + str(i).encode(), None
        else:
            entries = [Entry(f"US tariff on item {i} rises to {i}%", f"Document {i}.", guid=f"d{i}"),
                       Entry(f"稀土 {i}", "商务部公告。", guid=f"z{i}")]
            body, ctype = rss(entries, title=f"Wire {i}"), "application/rss+xml"
        docs.append((body, ctype, f"https://wire{i}.example/feed.xml"))
    expected = [parse_for_poll(body, ctype, url, matcher) for body, ctype, url in docs]
    assert sum(isinstance(e, str) for e in expected) >= 40  # malformed ones among them
    parser = FeedParser(workers=2)
    try:
        got = await asyncio.gather(*(parser.parse(body, ctype, url, matcher) for body, ctype, url in docs),
                                   return_exceptions=True)
        assert len(parser.worker_pids()) == 2
    finally:
        parser.close()
    for (_body, _ctype, url), want, outcome in zip(docs, expected, got):
        if isinstance(want, str):
            assert isinstance(outcome, FeedParseError) and outcome.url == url and outcome.reason == want
        else:
            assert outcome == want


async def test_a_big_body_is_written_without_blocking_the_loop():
    parser = FeedParser(workers=1)
    timer = None
    submitted = []
    try:
        await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        (pid,) = parser.worker_pids()
        body = rss(ENTRIES)
        big = body.replace(b"<channel>", b"<channel><!-- " + b"x" * (6 << 20) + b" -->", 1)  # 6 MB, > any pipe
        # A stopped worker reads nothing: a blocking write would hang the loop until the timer lets
        # the worker go on, so this test would not get the loop back before it.
        os.kill(pid, signal.SIGSTOP)
        timer = threading.Timer(30.0, os.kill, (pid, signal.SIGCONT))
        timer.start()
        job = asyncio.create_task(_started(submitted, parser.parse(big, "application/rss+xml", URL)))
        await async_wait_until(lambda: submitted, "the big body to be handed to the parser")
        # The job's first step (which writes what the pipe takes) has returned to the loop, and the
        # worker is still stopped: nothing was waiting on it.
        assert timer.is_alive() and not job.done()  # the loop went on while the body waited for the worker
        timer.cancel()
        os.kill(pid, signal.SIGCONT)
        parsed = await job
        assert parsed.feed == parse_feed(big, "application/rss+xml", URL)
    finally:
        if timer is not None:
            timer.cancel()
        parser.close()


async def test_a_worker_killed_with_jobs_in_flight_fails_only_the_one_it_was_reading():
    """The document the worker was reading (the oldest of its jobs) fails; those queued behind it
    were never started, so they go to the next worker, as do the jobs still waiting for a slot."""
    depth = FeedParser.PIPELINE_DEPTH
    parser = FeedParser(workers=1)
    try:
        await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        (pid,) = parser.worker_pids()
        bodies = [rss([Entry(f"Tariff item {i}", "Duty text.", guid=f"k{i}")]) for i in range(depth + 3)]
        urls = [f"https://wire{i}.example/feed.xml" for i in range(len(bodies))]
        os.kill(pid, signal.SIGSTOP)  # the first `depth` jobs go to the worker and stay there; the rest wait
        submitted = []
        jobs = [asyncio.create_task(_started(submitted, parser.parse(b, "application/rss+xml", u)))
                for b, u in zip(bodies, urls)]
        await async_wait_until(lambda: len(submitted) == len(jobs), "every job to be handed to the parser")
        assert not any(job.done() for job in jobs)
        os.kill(pid, signal.SIGKILL)
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        assert isinstance(outcomes[0], FeedParseError) and outcomes[0].url == urls[0]
        assert "parser process died" in outcomes[0].reason
        for body, url, outcome in zip(bodies[1:], urls[1:], outcomes[1:]):
            assert outcome.feed == parse_feed(body, "application/rss+xml", url)
        assert parser.worker_pids() and pid not in parser.worker_pids() and parser.workers == 1
    finally:
        parser.close()


async def test_a_worker_found_dead_between_feeds_is_replaced_without_an_error():
    parser = FeedParser(workers=1)
    try:
        await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        (pid,) = parser.worker_pids()
        os.kill(pid, signal.SIGKILL)
        # The loop does not run meanwhile: the parser has not seen the worker's pipe close. Wait
        # until the whole process has exited (all its threads), without reaping it.
        wait_until(lambda: os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None,
                   "the killed worker to exit")
        parsed = await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        assert [e.title for e in parsed.feed.entries] == [e.title for e in ENTRIES]
        assert parser.worker_pids() and pid not in parser.worker_pids()
    finally:
        parser.close()


async def test_an_exception_in_the_parser_fails_that_document_only():
    parser = FeedParser(workers=1)
    try:
        await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        (pid,) = parser.worker_pids()
        with pytest.raises(FeedParseError) as raised:
            await parser.parse(rss(ENTRIES), "application/rss+xml", URL, matcher=42)  # 42 has no .match()
        assert raised.value.url == URL and "AttributeError" in raised.value.reason
        assert len((await parser.parse(rss(ENTRIES), "application/rss+xml", URL)).feed.entries) == 2
        assert parser.worker_pids() == [pid]  # the same worker
    finally:
        parser.close()


async def test_the_parser_starts_no_threads_in_the_bot_process():
    before = threading.active_count()
    parser = FeedParser(workers=2)
    try:
        parser.start()
        bodies = [rss([Entry(f"Tariff item {i}", "Duty text.", guid=f"t{i}")]) for i in range(30)]
        await asyncio.gather(*(parser.parse(b, "application/rss+xml", URL) for b in bodies))
        assert len(parser.worker_pids()) == 2
        assert threading.active_count() == before
    finally:
        parser.close()
    assert threading.active_count() == before


async def test_close_fails_the_jobs_in_flight_and_a_later_parse_starts_afresh():
    parser = FeedParser(workers=1)
    try:
        await parser.parse(rss(ENTRIES), "application/rss+xml", URL)
        (pid,) = parser.worker_pids()
        os.kill(pid, signal.SIGSTOP)  # it answers none of them before close() (which then kills it)
        submitted = []
        jobs = [asyncio.create_task(_started(submitted, parser.parse(rss(ENTRIES), "application/rss+xml",
                                                                     f"https://w{i}.example/f")))
                for i in range(FeedParser.PIPELINE_DEPTH + 2)]
        await async_wait_until(lambda: len(submitted) == len(jobs), "every job to be written or queued")
        parser.close()
        for i, outcome in enumerate(await asyncio.gather(*jobs, return_exceptions=True)):
            assert isinstance(outcome, FeedParseError) and outcome.url == f"https://w{i}.example/f"
            assert "closed" in outcome.reason
        assert parser.worker_pids() == [] and _worker_children() == []
        assert len((await parser.parse(rss(ENTRIES), "application/rss+xml", URL)).feed.entries) == 2
    finally:
        parser.close()


def test_close_after_the_event_loop_ended_leaves_no_process():
    """asyncio.run returned (as in the CLI and the benchmark), then close() from plain code; a second
    asyncio.run with the same parser gets fresh workers."""
    parser = FeedParser(workers=2)
    parser.start()

    async def use() -> int:  # enough parses at once to use both workers
        parsed = await asyncio.gather(*(parser.parse(rss(ENTRIES), "application/rss+xml", URL) for _ in range(6)))
        return sum(len(p.feed.entries) for p in parsed)

    try:
        assert asyncio.run(use()) == 12
        first = parser.worker_pids()
        assert asyncio.run(use()) == 12
        second = parser.worker_pids()
        assert len(first) == len(second) == 2 and not set(first) & set(second)
    finally:
        parser.close()
    assert parser.worker_pids() == []
    assert _worker_children() == []  # every worker exited and was reaped: no zombie, no orphan
    for pid in first + second:
        assert not Path(f"/proc/{pid}").exists()
