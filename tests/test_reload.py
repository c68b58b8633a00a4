"""Hot reload applies the whole feeds.yaml to a running bot: a target of a kind the bot started
without (Slack), digests added and removed, and the `fetch` section, all without a restart.

Each test runs a real BotRunner (role all) on loopback: feeds from the loopback server, Slack's
Web API from its fake, the outbox delivering on the bot's own jobs or a direct dispatch."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from chat_fixtures import slack  # noqa: F401  (pytest fixture)
from faults.support import free_port, healthy_entry, lines
from fakes.slack_api import BOT_TOKEN
from feedgen import make_env, rss
from loopback import Reply
from waits import async_wait_until

from bot.app.container import build_app, close_app, parse_target
from bot.app.runner import BotRunner
from bot.config import load_config

RSS = "application/rss+xml"
CHANNEL = "C0BRIEFS1"  # a channel the fake Slack has
TOPICS = """topics:
  rare-earth:
    label: {en: Rare earths, zh: 稀土}
    keywords: [antimony, rare earth]
"""


def config_text(feeds: dict[str, str], to: list[str], extra: str = "") -> str:
    listed = [f'  - {{name: {name}, url: "{url}", every: 1h}}' for name, url in feeds.items()]
    targets = ", ".join(f'"{t}"' for t in to)
    return TOPICS + "feeds:\n" + "\n".join(listed) + f"\nroutes:\n  - {{name: all, to: [{targets}]}}\n" + extra


def digest_text(cron: str) -> str:
    return f'digests:\n  - {{name: morning, cron: "{cron}", timezone: UTC, to: ["slack:{CHANNEL}"]}}\n'


@pytest.fixture
async def bot(http_server, slack, tmp_path, db_url):
    """A running bot with one feed posting to a jsonl file; Slack credentials in its environment."""
    http_server.route("/a.xml", Reply(200, rss([healthy_entry("a", 51)]), content_type=RSS))
    config = tmp_path / "feeds.yaml"
    config.write_text(config_text({"a": http_server.url("/a.xml")}, ["jsonl:out/briefs.jsonl"]), encoding="utf-8")
    env = make_env(db_url, metrics_port=free_port(), SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_BASE_URL=slack.api_url)
    app = build_app(load_config(config, parse_target), env)
    runner = BotRunner(app, role="all")
    await runner.start()
    try:
        await runner.poll_job("a")
        await async_wait_until(lambda: len(lines(tmp_path / "out" / "briefs.jsonl")) == 1, "feed a's brief")
        yield runner, config
    finally:
        await runner.stop()
        await close_app(app)


def digest_jobs(runner: BotRunner) -> dict:
    return {j.id: j for j in runner.scheduler.get_jobs() if j.id.startswith("digest")}


async def test_reload_adds_a_slack_target_and_a_digest_without_restart(bot, http_server, slack, tmp_path, caplog):
    runner, config = bot
    caplog.set_level(logging.INFO, logger="briefbot")
    assert "slack" not in runner.app.deliverers and not digest_jobs(runner)
    jsonl_deliverer = runner.app.deliverers["jsonl"]

    # A second feed, a Slack target on the route and a digest two minutes from now (so no earlier
    # fire is within its grace: the digest runs only when its job is driven below).
    http_server.route("/b.xml", Reply(200, rss([healthy_entry("b", 52)]), content_type=RSS))
    soon = (datetime.now(timezone.utc) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    config.write_text(config_text({"a": http_server.url("/a.xml"), "b": http_server.url("/b.xml")},
                                  ["jsonl:out/briefs.jsonl", f"slack:{CHANNEL}"],
                                  digest_text(f"{soon.minute} {soon.hour} * * *")), encoding="utf-8")
    assert await runner.reload_config() is True
    assert any("new target kinds: slack" in r.getMessage() for r in caplog.records)
    assert runner.app.deliverers["jsonl"] is jsonl_deliverer  # kept, not rebuilt
    assert runner.dispatcher.deliverers is runner.app.deliverers

    # The running bot's poll of the new feed reaches the fake Slack (and the file).
    await runner.poll_job("b")
    posted = await async_wait_until(lambda: slack.posted(CHANNEL), "feed b's brief in Slack")
    assert "52 smelters" in str(posted[0]) and len(lines(tmp_path / "out" / "briefs.jsonl")) == 2

    # The digest is scheduled for its fire time, and its job posts to Slack when it fires.
    job = digest_jobs(runner)["digest:morning"]
    assert job.next_run_time == soon
    assert "digests-catch-up" in digest_jobs(runner)
    await job.func(*job.args, now=soon)
    await runner.dispatch_job()
    messages = await async_wait_until(lambda: slack.posted(CHANNEL)[1:], "the digest in Slack")
    assert len(messages) == 1 and "51 smelters" in str(messages[0]) and "52 smelters" in str(messages[0])


async def test_reload_that_removes_a_digest_unschedules_it(bot, http_server):
    runner, config = bot
    feeds = {"a": http_server.url("/a.xml")}
    config.write_text(config_text(feeds, ["jsonl:out/briefs.jsonl"], digest_text("0 8 * * *")), encoding="utf-8")
    assert await runner.reload_config() is True
    assert set(digest_jobs(runner)) == {"digest:morning", "digests-catch-up"}

    # Changed cron and timezone: the same job, rescheduled.
    config.write_text(config_text(feeds, ["jsonl:out/briefs.jsonl"], digest_text("30 9 * * *")
                                  .replace("timezone: UTC", "timezone: Asia/Shanghai")), encoding="utf-8")
    assert await runner.reload_config() is True
    fire = digest_jobs(runner)["digest:morning"].next_run_time
    assert (fire.hour, fire.minute, str(fire.tzinfo)) == (9, 30, "Asia/Shanghai")

    config.write_text(config_text(feeds, ["jsonl:out/briefs.jsonl"]), encoding="utf-8")
    assert await runner.reload_config() is True
    assert digest_jobs(runner) == {}


async def test_reload_of_fetch_timeout_applies_to_the_next_polls(bot, http_server):
    runner, config = bot
    old = runner.poller.fetcher
    released = threading.Event()
    http_server.route("/slow.xml", Reply(200, rss([healthy_entry("s", 53)]), content_type=RSS, hold=released))
    try:
        config.write_text(config_text({"a": http_server.url("/a.xml")}, ["jsonl:out/briefs.jsonl"],
                                      "fetch: {timeout: 1s}\n"), encoding="utf-8")
        assert await runner.reload_config() is True
        fetcher = runner.poller.fetcher
        assert fetcher is runner.app.fetcher and fetcher is not old
        assert runner.poller.briefer.fetcher is fetcher
        # The replaced fetcher is closed once no job uses it.
        await async_wait_until(lambda: old._closed, "the replaced fetcher to be closed")

        # A reply held past 1 s: the new fetcher gives up (the old one would wait 20 s).
        result = await fetcher.fetch(http_server.url("/slow.xml"))
        assert result.status == "error" and "timeout" in f"{result.error_kind} {result.error}".lower()
    finally:
        released.set()


async def test_reload_of_llm_section_swaps_the_summariser(http_server, tmp_path, db_url):
    """With an LLM configured, a changed `llm` section gives the next polls and digests a new client."""
    config = tmp_path / "feeds.yaml"
    feeds = {"a": http_server.url("/a.xml")}
    config.write_text(config_text(feeds, ["jsonl:out/briefs.jsonl"]), encoding="utf-8")
    # No call is made: the base URL only switches LLM briefs on.
    env = make_env(db_url, metrics_port=free_port(), openai_base_url=f"http://127.0.0.1:{free_port()}/v1")
    app = build_app(load_config(config, parse_target), env)
    runner = BotRunner(app, role="all")
    await runner.start()
    try:
        old = runner.poller.llm
        config.write_text(config_text(feeds, ["jsonl:out/briefs.jsonl"], "llm: {timeout: 5s}\n"), encoding="utf-8")
        assert await runner.reload_config() is True
        new = runner.poller.llm
        assert new is app.llm and new is not old and runner.poller.briefer.llm is new
        assert new.client.timeout == 5 and old.client.timeout == 60
        await async_wait_until(lambda: old.client.is_closed(), "the replaced LLM client to be closed")
        # A reload that leaves `llm` alone keeps the client and points it at the new settings.
        config.write_text(config_text(feeds, ["jsonl:out/briefs.jsonl"], "llm: {timeout: 5s}\n")
                          .replace("Rare earths", "Rare-earth metals"), encoding="utf-8")
        assert await runner.reload_config() is True
        assert runner.poller.llm is new and new.settings is app.settings
    finally:
        await runner.stop()
        await close_app(app)
