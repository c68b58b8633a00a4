"""Alerts when things break: one message per incident and one when it recovers, never one per poll.

Feeds, Slack, Discord and the LLM are loopback fakes speaking their wire formats; time moves by
passing `now` to the alert check (as the digest tests pass it to their jobs), never by sleeping."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from datetime import timedelta

import pytest
from fakes.discord_api import FakeDiscord
from fakes.openai_server import FakeOpenAI, chat_json, server_error
from fakes.slack_api import BOT_TOKEN, FakeSlack, Scripted
from feedgen import Entry, lines, make_env, make_settings, poll_and_deliver, rss
from loopback import Reply
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from waits import async_wait_until

from bot.adapters.discord.deliver import set_api_base
from bot.adapters.discord.render import render_digest as discord_digest
from bot.adapters.slack.render import render_digest as slack_digest
from bot.alerts import AlertCheck, AlertDeps
from bot.app.container import build_app, close_app, make_alert_check, make_digest_deps, make_dispatcher
from bot.app.runner import BotRunner
from bot.config import ConfigError, load_config
from bot.digest import build_digest, render_digest_text, run_digest
from bot.models import utcnow
from bot.summarise import Article

ALERTS = "jsonl:out/alerts.jsonl"
TARIFF = Entry("US raises tariffs on Chinese magnets", "The tariff on magnets rises to 25% from January.",
               guid="t-1", link="https://wire.example/t-1")
TARIFF_2 = Entry("EU weighs tariffs on rare earth magnets", "A tariff of 12% is proposed on magnet imports.",
                 guid="t-2", link="https://wire.example/t-2")
CHANNEL_GONE = "111111111111111111"
ON_CALL = "222222222222222222"


def alert_settings(tmp_path, feeds: list[dict], targets: list[str] | None = None,
                   alert_to: list[str] | None = None, **extra):
    return make_settings(tmp_path, feeds, targets, alerts={"to": alert_to or [ALERTS], "after": "6h"}, **extra)


def alerts_posted(settings) -> list[dict]:
    return [line["alert"] for line in lines(settings.resolve_path(ALERTS.partition(":")[2])) if "alert" in line]


async def deliver(app) -> None:
    while await make_dispatcher(app).dispatch_once():
        pass


def other_worker(app, worker_id: str) -> AlertCheck:
    """The check as another worker (or this one after a restart) runs it: only the database is shared."""
    return AlertCheck(AlertDeps(current_settings=lambda: app.settings, store=app.store, worker_id=worker_id,
                                redact=lambda text: text, llm_enabled=app.env.llm_enabled))


async def test_a_feed_failing_for_a_while_gives_one_alert_and_one_recovery(http_server, tmp_path, any_db_url):
    http_server.route("/feed.xml", Reply(503, b"upstream down"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(any_db_url))
    try:
        start = utcnow()
        await poll_and_deliver(app)
        check = make_alert_check(app)
        for hours in (0, 1, 5.9):
            assert check.run(start + timedelta(hours=hours)).alerted == []
            await poll_and_deliver(app)  # still failing: every poll fails, none alerts
        assert alerts_posted(settings) == []

        alerted = check.run(start + timedelta(hours=6, minutes=1)).alerted
        assert [i.subject for i in alerted] == ["wire"]
        await poll_and_deliver(app)
        # A restarted process and a second worker see the incident already alerted.
        for worker in ("restarted", "worker-2"):
            assert other_worker(app, worker).run(start + timedelta(hours=7)).alerted == []
        await deliver(app)
        [alert] = alerts_posted(settings)
        assert alert["phase"] == "open" and alert["kind"] == "feed-failing" and alert["subject"] == "wire"
        assert "503" in alert["detail"] and "[url hidden]" in alert["detail"] and "127.0.0.1" not in alert["detail"]

        http_server.route("/feed.xml", Reply(200, rss([TARIFF]), content_type="application/rss+xml"))
        await poll_and_deliver(app)
        assert [i.subject for i in check.run(start + timedelta(hours=8)).resolved] == ["wire"]
        assert other_worker(app, "worker-2").run(start + timedelta(hours=9)).resolved == []
        await deliver(app)
        assert [(a["phase"], a["subject"]) for a in alerts_posted(settings)] == [("open", "wire"), ("resolved", "wire")]
    finally:
        await close_app(app)


async def test_a_feed_that_recovers_before_the_threshold_never_alerts(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(500, b"oops"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        start = utcnow()
        await poll_and_deliver(app)
        check = make_alert_check(app)
        check.run(start)
        http_server.route("/feed.xml", Reply(200, rss([TARIFF]), content_type="application/rss+xml"))
        await poll_and_deliver(app)
        assert check.run(start + timedelta(hours=1)).resolved != []
        assert check.run(start + timedelta(hours=7)).alerted == []
        await deliver(app)
        assert alerts_posted(settings) == []
    finally:
        await close_app(app)


async def test_a_gone_feed_alerts_at_once(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(410, b"gone"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}],
                              alert_to=[ALERTS, "console"])
    console = io.StringIO()
    app = build_app(settings, make_env(db_url), console_stream=console)
    try:
        await poll_and_deliver(app)
        alerted = make_alert_check(app).run().alerted
        assert [(i.kind, i.subject) for i in alerted] == [("feed-disabled", "wire")]
        await deliver(app)
        [alert] = alerts_posted(settings)
        assert alert["kind"] == "feed-disabled" and "410" in alert["detail"]
        assert "Alert: Feed wire is switched off and no longer polled" in console.getvalue()
        assert "告警：订阅源 wire 已停用，不再抓取" in console.getvalue()
    finally:
        await close_app(app)

    # Restarted with the feed's new URL: the feed starts afresh, and the incident closes once.
    moved = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/moved.xml")}])
    app = build_app(moved, make_env(db_url))
    try:
        [resolved] = make_alert_check(app).run().resolved
        assert resolved.subject == "wire"
        assert make_alert_check(app).run().resolved == []
        await deliver(app)
        assert [(a["phase"], a["detail"]) for a in alerts_posted(moved)][1:] == [
            ("resolved", "polled again from its new URL")]
    finally:
        await close_app(app)


async def test_two_workers_checking_at_once_queue_one_alert(http_server, tmp_path, any_db_url):
    http_server.route("/feed.xml", Reply(410, b"gone"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(any_db_url))
    try:
        await poll_and_deliver(app)
        both = threading.Barrier(2)

        def check(worker: str):
            both.wait()
            return other_worker(app, worker).run()

        results = await asyncio.gather(*(asyncio.to_thread(check, w) for w in ("worker-1", "worker-2")))
        assert sum(len(r.alerted) for r in results if r is not None) == 1
        assert [r.ref_id for r in app.store.outbox_rows() if r.kind == "alert"] == ["i1:open"]
    finally:
        await close_app(app)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_running_bot_checks_on_its_schedule_and_posts_at_once(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(410, b"gone"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml"), "every": "30s"}])
    app = build_app(settings, make_env(db_url, metrics_port=free_port()))
    runner = BotRunner(app)
    await runner.start()

    def switched_off() -> bool:
        state = app.store.feed_state("wire")
        return bool(state and state.disabled_reason)

    try:
        assert runner.scheduler.get_job("alerts") is not None
        await async_wait_until(switched_off, "the feed switched off by its first poll")
        await runner.alert_job()
        [alert] = alerts_posted(settings)  # delivered by the job itself, not by a later dispatch
        assert alert["kind"] == "feed-disabled"
        await runner.alert_job()
        assert len(alerts_posted(settings)) == 1
    finally:
        await runner.stop()
        await close_app(app)


@pytest.fixture
async def discord_fake():
    server = await FakeDiscord().start()
    server.add_channel(ON_CALL)  # the only channel: any other is unknown
    yield server
    await server.stop()
    set_api_base(None)


async def test_revoked_slack_token_and_unknown_discord_channel_alert_once_each_elsewhere(
        http_server, tmp_path, any_db_url, discord_fake):
    feed = {"name": "wire", "url": http_server.url("/feed.xml")}
    http_server.route("/feed.xml", Reply(200, rss([TARIFF]), content_type="application/rss+xml"))
    with FakeSlack() as slack:
        slack.script("chat.postMessage", Scripted(error="token_revoked"))
        # The Slack channel is also an alert target: it must not be sent its own alert.
        settings = alert_settings(tmp_path, [feed], targets=["slack:C0BRIEFS1", f"discord:{CHANNEL_GONE}"],
                                  alert_to=["slack:C0BRIEFS1", f"discord:{ON_CALL}", ALERTS])
        env = make_env(any_db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_BASE_URL=slack.api_url,
                       DISCORD_BOT_TOKEN=discord_fake.bot_token, DISCORD_API_BASE_URL=discord_fake.origin)
        app = build_app(settings, env)
        try:
            await poll_and_deliver(app)
            assert {r.target: r.status for r in app.store.outbox_rows(ref_id=None) if r.kind == "brief"} == {
                "slack:C0BRIEFS1": "failed", f"discord:{CHANNEL_GONE}": "failed"}
            check = make_alert_check(app)
            alerted = check.run().alerted
            assert sorted(i.subject for i in alerted) == sorted(["slack:C0BRIEFS1", f"discord:{CHANNEL_GONE}"])
            await deliver(app)
            assert check.run().alerted == [] and other_worker(app, "worker-2").run().alerted == []
            await deliver(app)

            posted = alerts_posted(settings)
            assert sorted((a["kind"], a["subject"]) for a in posted) == sorted(
                [("target", "slack:C0BRIEFS1"), ("target", f"discord:{CHANNEL_GONE}")])
            assert any("token_revoked" in a["detail"] for a in posted)
            assert any("Unknown Channel" in a["detail"] for a in posted)
            assert [r for r in app.store.outbox_rows() if r.kind == "alert" and r.target.startswith("slack:")] == []
            assert len(slack.calls_to("chat.postMessage")) == 1  # the failed brief, nothing after it
            embeds = [m["payload"]["embeds"][0] for m in discord_fake.messages if m["channel_id"] == ON_CALL]
            assert [e["title"] for e in embeds] == ["Alert / 告警", "Alert / 告警"]
            assert sorted(e["description"].splitlines()[0] for e in embeds) == sorted(
                ["Posting to slack:C0BRIEFS1 fails; its messages are not delivered",
                 f"Posting to discord:{CHANNEL_GONE} fails; its messages are not delivered"])

            # The token is fixed: the next brief lands, and the recovery goes to both alert targets.
            http_server.route("/feed.xml", Reply(200, rss([TARIFF, TARIFF_2]), content_type="application/rss+xml"))
            await poll_and_deliver(app)
            resolved = check.run().resolved
            assert [i.subject for i in resolved] == ["slack:C0BRIEFS1"]
            await deliver(app)
            assert [(a["phase"], a["subject"]) for a in alerts_posted(settings)][2:] == [
                ("resolved", "slack:C0BRIEFS1")]
            texts = [m["text"] for m in slack.posted("C0BRIEFS1")]
            assert len(texts) == 2 and "works again" in texts[1]
            assert check.run().alerted == []  # Discord is still failing: no second alert for it
        finally:
            await close_app(app)


LLM_REPLY = {
    "relevant": True,
    "title": {"en": "US raises tariffs on Chinese magnets", "zh": "美国提高对中国磁体的关税"},
    "summary": {"en": "The tariff on magnets rises to 25% from January.", "zh": "磁体关税将升至25%。"},
    "figures": [{"text": "25%", "label": {"en": "new tariff", "zh": "新关税"}}],
}


def tariff_article() -> Article:
    return Article(feed="wire", url="https://wire.example/t-1", title=TARIFF.title, text=TARIFF.body, lang="en",
                   topics=["tariff"])


@pytest.fixture(scope="module")
def openai_fake():
    with FakeOpenAI() as server:
        yield server


def llm_app(tmp_path, db_url, fake: FakeOpenAI, **llm):
    from pathlib import Path
    prompts = Path(__file__).resolve().parents[1] / "prompts"
    settings = alert_settings(tmp_path, [], llm={"max_retries": 0, "prompts_dir": str(prompts), **llm})
    return build_app(settings, make_env(db_url, openai_base_url=fake.base_url, openai_api_key="sk-test",
                                        model="small")), settings


async def test_the_llm_failing_for_an_hour_gives_one_alert_and_one_recovery(tmp_path, db_url, openai_fake):
    openai_fake.reset()
    openai_fake.default = server_error()
    app, settings = llm_app(tmp_path, db_url, openai_fake)
    try:
        start = utcnow()
        assert await app.llm.summarise(tariff_article()) is None
        check = make_alert_check(app)
        assert check.run(start + timedelta(minutes=30)).alerted == []
        assert await app.llm.summarise(tariff_article()) is None
        assert [i.kind for i in check.run(start + timedelta(minutes=61)).alerted] == ["llm-failing"]
        assert check.run(start + timedelta(hours=2)).alerted == []
        await deliver(app)
        [alert] = alerts_posted(settings)
        assert alert["kind"] == "llm-failing" and "500" in alert["detail"]

        openai_fake.queue(chat_json(LLM_REPLY))
        assert await app.llm.summarise(tariff_article()) is not None
        assert [i.kind for i in check.run(start + timedelta(hours=3)).resolved] == ["llm-failing"]
        await deliver(app)
        assert [(a["phase"], a["kind"]) for a in alerts_posted(settings)] == [
            ("open", "llm-failing"), ("resolved", "llm-failing")]
    finally:
        openai_fake.reset()
        await close_app(app)


async def test_the_llm_budget_spent_alerts_until_the_next_day(tmp_path, db_url, openai_fake):
    openai_fake.reset()
    app, settings = llm_app(tmp_path, db_url, openai_fake, daily_token_budget=100)
    try:
        openai_fake.queue(chat_json(LLM_REPLY))  # 120 + 80 tokens: the day's budget is spent
        assert await app.llm.summarise(tariff_article()) is not None
        now = utcnow()
        check = make_alert_check(app)
        assert [i.kind for i in check.run(now).alerted] == ["llm-budget"]
        assert check.run(now + timedelta(minutes=5)).alerted == []
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=5)
        assert [i.kind for i in check.run(tomorrow).resolved] == ["llm-budget"]
        await deliver(app)
        assert [(a["phase"], a["kind"]) for a in alerts_posted(settings)] == [
            ("open", "llm-budget"), ("resolved", "llm-budget")]
    finally:
        openai_fake.reset()
        await close_app(app)


async def test_the_digest_carries_a_health_line_only_while_a_feed_fails(http_server, tmp_path, db_url):
    http_server.route("/up.xml", Reply(200, rss([]), content_type="application/rss+xml"))
    http_server.route("/down.xml", Reply(503, b"down"))
    settings = alert_settings(tmp_path, [{"name": "up", "url": http_server.url("/up.xml")},
                                         {"name": "down", "url": http_server.url("/down.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        await poll_and_deliver(app)
        digest = build_digest(settings, app.store, None, now=utcnow())
        assert [t.feed for t in digest.failing_feeds] == ["down"] and digest.feeds_total == 2
        text = render_digest_text(digest)
        assert "Feed health: 1 of 2 feeds failing — down (1 failed fetch in a row)" in text
        assert "订阅源状态：2 个中 1 个异常 — down（连续失败 1 次）" in text
        assert "briefbot is running" not in text
        slack_text = str(slack_digest(digest, settings))
        assert "Feed health: 1 of 2 feeds failing" in slack_text
        [[header, *_]] = discord_digest(digest, settings)
        assert "Feed health: 1 of 2 feeds failing" in header.description

        http_server.route("/down.xml", Reply(200, rss([]), content_type="application/rss+xml"))
        await poll_and_deliver(app)
        healthy = build_digest(settings, app.store, None, now=utcnow())
        assert healthy.failing_feeds == []
        text = render_digest_text(healthy)
        assert "Feed health" not in text and "订阅源状态" not in text and "briefbot is running" in text
        assert "Feed health" not in str(slack_digest(healthy, settings))
        assert "Feed health" not in (discord_digest(healthy, settings)[0][0].description or "")
    finally:
        await close_app(app)


async def test_the_feeds_listing_is_unaffected_by_alerts(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(410, b"gone"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        await poll_and_deliver(app)
        before = app.commands.feeds_health()
        assert [(f.name, f.status) for f in before] == [("wire", "disabled")]
        assert make_alert_check(app).run().alerted != []
        await deliver(app)
        assert app.commands.feeds_health() == before
    finally:
        await close_app(app)


def test_alerts_setting_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "feeds.yaml"
    base = ("topics:\n  tariff:\n    label: {en: Tariffs, zh: 关税}\n    keywords: [tariff]\n"
            "feeds:\n  - {name: wire, url: 'https://wire.example/feed.xml'}\n")
    path.write_text(base + "alerts:\n  to: [jsonl:out/alerts.jsonl]\n  after: 6x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad_after:
        load_config(path)
    assert "feeds.yaml:9: alerts.after" in str(bad_after.value) and "6x" in str(bad_after.value)

    path.write_text(base + "alerts:\n  to: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as no_targets:
        load_config(path)
    assert "feeds.yaml:8: alerts.to" in str(no_targets.value)

    path.write_text(base + "alerts: {to: [jsonl:out/alerts.jsonl]}\n", encoding="utf-8")
    alerts = load_config(path).alerts
    assert alerts is not None and alerts.after == timedelta(hours=6)
    assert [str(t) for t in load_config(path).all_targets()] == ["jsonl:out/alerts.jsonl"]


async def test_an_llm_answer_between_failures_starts_the_hour_again(tmp_path, db_url, openai_fake):
    app, settings = llm_app(tmp_path, db_url, openai_fake)
    try:
        start = utcnow()
        app.store.note_llm_failure("http_500: down", now=start)
        app.store.record_llm_usage("small", "brief", 100, 50, 80.0, "ok", now=start + timedelta(minutes=10))
        app.store.note_llm_failure("http_500: down again", now=start + timedelta(minutes=50))
        check = make_alert_check(app)
        assert check.run(start + timedelta(minutes=70)).alerted == []  # failing for 20 minutes, not 70
        assert [i.detail for i in check.run(start + timedelta(minutes=111)).alerted] == ["http_500: down again"]
    finally:
        await close_app(app)


async def test_a_digest_that_skips_empty_windows_still_posts_while_a_feed_fails(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(503, b"down"))
    digest = {"name": "morning", "cron": "0 8 * * *", "to": ["jsonl:out/digest.jsonl"], "skip_empty": True}
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}], digests=[digest])
    app = build_app(settings, make_env(db_url))
    try:
        cfg = settings.digests[0]
        assert not await run_digest(make_digest_deps(app), cfg, utcnow())  # nothing new, every feed healthy
        await poll_and_deliver(app)
        assert await run_digest(make_digest_deps(app), cfg, utcnow() + timedelta(days=1))
        await deliver(app)
        [posted] = lines(settings.resolve_path("out/digest.jsonl"))
        assert [t["feed"] for t in posted["digest"]["failing_feeds"]] == ["wire"]
    finally:
        await close_app(app)


async def test_a_failing_webhook_is_named_without_its_token(http_server, tmp_path, db_url, discord_fake):
    revoked = "https://discord.com/api/webhooks/333333333333333333/revoked-token-abcdef"  # never added: 404
    http_server.route("/feed.xml", Reply(200, rss([TARIFF]), content_type="application/rss+xml"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}],
                              targets=[f"discord-webhook:{revoked}"])
    app = build_app(settings, make_env(db_url, DISCORD_API_BASE_URL=discord_fake.origin))
    try:
        await poll_and_deliver(app)
        assert [i.subject for i in make_alert_check(app).run().alerted] == [
            "discord-webhook:https://discord.com/api/webhooks/333333333333333333/***"]
        await deliver(app)
        [alert] = alerts_posted(settings)
        assert "revoked-token" not in str(alert)
    finally:
        await close_app(app)


def test_poll_once_opens_incidents_as_run_does(http_server, tmp_path, db_url):
    """Cron users run `briefbot poll --once`: its cycle checks for incidents and posts the alert."""
    from bot.app.cli_commands import one_cycle

    http_server.route("/feed.xml", Reply(410, b"gone"))
    settings = alert_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    one_cycle(settings, make_env(db_url))
    one_cycle(settings, make_env(db_url))  # still gone: not told twice
    assert [(a["phase"], a["kind"], a["subject"]) for a in alerts_posted(settings)] == [
        ("open", "feed-disabled", "wire")]
