"""Feed parsing in a worker process: same results as inline, errors named. (A worker that dies:
tests/faults/test_parser_worker.py.)"""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Env
from bot.entries import add_entry_facts
from bot.feeds.parse import FeedParseError, parse_feed
from bot.feeds.parse_pool import FeedParser
from bot.pipeline import Poller, build_app, close_app
from bot.topics import TopicMatcher
from feedgen import Entry, make_env, make_settings, rss
from loopback import Reply

URL = "https://wire.example/feed.xml"
ENTRIES = [Entry("US tariff on magnets rises to 25%", "The duty takes effect on May 1.", guid="t1"),
           Entry("稀土出口管制收紧", "商务部公告：7类中重稀土实施出口管制。", guid="z1")]


async def test_worker_process_gives_the_inline_result_and_names_bad_documents():
    parser = FeedParser(workers=1)
    try:
        for body in (rss(ENTRIES), rss(ENTRIES, encoding="gbk")):
            assert await parser.parse(body, "application/rss+xml", URL) == parse_feed(body, "application/rss+xml", URL)
        with pytest.raises(FeedParseError) as raised:
            await parser.parse(b"<html><body>Not a feed</body></html>", "text/html", URL)
        assert raised.value.url == URL and "HTML page" in raised.value.reason
    finally:
        parser.close()


async def test_worker_works_out_the_entries_facts_as_inline(tmp_path):
    """Identity, topics, language and numbers come from the worker process: the same as worked out inline."""
    matcher = TopicMatcher(make_settings(tmp_path, []))
    off_topic = Entry("City wins the cup final 3-1", "A late goal in front of 60,000 fans.", guid="f1")
    parser = FeedParser(workers=1)
    try:
        for body in (rss(ENTRIES + [off_topic]), rss(ENTRIES, encoding="gbk")):
            got = await parser.parse(body, "application/rss+xml", URL, matcher)
            assert got == add_entry_facts(parse_feed(body, "application/rss+xml", URL), matcher)
            assert parser.worker_pids()
        tariff, rare_earth, football = (
            e.facts for e in (await parser.parse(rss(ENTRIES + [off_topic]), "application/rss+xml", URL,
                                                 matcher)).entries)
        assert tariff.topics == ["tariff"] and tariff.lang == "en"
        assert [n.text for n in tariff.title_numbers] == ["25%"]
        assert rare_earth.topics == ["rare-earth"] and rare_earth.lang == "zh"
        assert football.topics == [] and football.body_numbers == []  # off-topic: no numbers needed
        assert len({tariff.ident.item_key, rare_earth.ident.item_key, football.ident.item_key}) == 3
    finally:
        parser.close()


async def test_poll_through_a_parser_process_briefs_items(tmp_path, http_server):
    http_server.route("/wire.xml", Reply(200, rss(ENTRIES), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/wire.xml")}])
    app = build_app(settings, make_env(f"sqlite:///{tmp_path / 'b.db'}", parse_workers=1))
    try:
        (report,) = await Poller(app).poll_all()
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
