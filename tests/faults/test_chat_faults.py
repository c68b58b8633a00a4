"""Slack and Discord faults, end to end: a real poll makes one brief for three targets (Slack,
Discord, jsonl); the outbox Dispatcher delivers with the real adapters to loopback fakes of the
Slack Web API and Discord REST API, one of which misbehaves.

Each test checks: the other targets get the brief once, the faulty row's state (status,
attempts, next_attempt_at, last_error) says what happened, a log line names the target and the
brief, no token appears anywhere, and after the retry the platform holds exactly one copy.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from bot.adapters.discord.deliver import DiscordDeliverer
from bot.app.container import make_dispatcher
from bot.adapters.slack.deliver import METADATA_EVENT_TYPE, SlackDeliverer
from bot.models import utcnow
from bot.app.container import build_app, close_app
from chat_fixtures import DISCORD_CHANNEL, DISCORD_TOKEN, discord_api, slack  # noqa: F401  (pytest fixtures)
from faults.support import DropProxy, healthy_entry, lines, log_text, make_due, poll_and_deliver
from fakes.slack_api import BOT_TOKEN, FakeSlack, Scripted
from feedgen import make_env, make_settings, rss
from loopback import Reply

RSS = "application/rss+xml"
SLACK_CHANNEL = "C0BRIEFS1"
DISCORD_PATH = f"/channels/{DISCORD_CHANNEL}/messages"


@pytest.fixture(autouse=True)
def _capture(caplog):
    caplog.set_level(logging.INFO, logger="briefbot")


@asynccontextmanager
async def chat_app(server, tmp_path, db_url, *, slack_url: str, discord_url: str, slack_target: str = SLACK_CHANNEL,
                   discord_target: str = DISCORD_CHANNEL, slack_token: str = BOT_TOKEN,
                   discord_token: str = DISCORD_TOKEN):
    server.route("/wire.xml", Reply(200, rss([healthy_entry("chat")]), content_type=RSS))
    targets = [f"slack:{slack_target}", f"discord:{discord_target}", "jsonl:out/briefs.jsonl"]
    settings = make_settings(tmp_path, [{"name": "wire", "url": server.url("/wire.xml")}], targets=targets)
    env = make_env(db_url, SLACK_BOT_TOKEN=slack_token, SLACK_API_BASE_URL=slack_url,
                   DISCORD_BOT_TOKEN=discord_token, DISCORD_API_BASE_URL=discord_url)
    app = build_app(settings, env)
    # The real Slack adapter, with no in-place retries: every failure is the outbox's to handle.
    app.deliverers["slack"] = SlackDeliverer(slack_token, slack_url, settings=settings, rate_limit_retries=0,
                                             server_error_retries=0, retry_backoff=0.01)
    try:
        yield app
    finally:
        await close_app(app)


def rows(app) -> dict[str, object]:
    return {r.target.split(":")[0]: r for r in app.store.outbox_rows()}


def assert_others_delivered(app, tmp_path, faulty: str) -> None:
    by_kind = rows(app)
    assert len(by_kind) == 3 and app.store.count_briefs() == 1
    for kind, row in by_kind.items():
        if kind != faulty:
            assert row.status == "sent" and row.attempts == 1, (kind, row)
    assert len(lines(tmp_path / "out" / "briefs.jsonl")) == 1


def assert_logged(caplog, target: str, brief_id: str, *secrets: str) -> None:
    named = [r for r in caplog.records if r.levelno >= logging.WARNING and target in r.getMessage()
             and brief_id in r.getMessage()]
    assert named, f"no warning names {target} and {brief_id}"
    text = log_text(caplog)
    for secret in secrets:
        assert secret not in text


async def redeliver(app) -> int:
    """The backoff has passed (time travel): dispatch again."""
    make_due(app.store)
    return await make_dispatcher(app).dispatch_once()


def slack_keys(slack: FakeSlack) -> list[str]:
    return [m["metadata"]["event_payload"]["key"] for m in slack.posted(SLACK_CHANNEL)
            if m.get("metadata", {}).get("event_type") == METADATA_EVENT_TYPE]


# --------------------------------------------------------------------------- Slack

@pytest.mark.fault("slack: HTTP 429 with Retry-After")
async def test_slack_429_goes_back_to_the_outbox_with_retry_after(server, tmp_path, db_url, caplog, slack,
                                                                   discord_api):
    slack.script("chat.postMessage", Scripted(status=429, error="ratelimited", retry_after=120))
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin) as app:
        before = utcnow()
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "slack")
        row = rows(app)["slack"]
        assert row.status == "pending" and row.attempts == 1
        assert row.next_attempt_at >= before + timedelta(seconds=120)
        assert "rate limit" in row.last_error and "Retry-After 120s" in row.last_error
        assert_logged(caplog, f"slack:{SLACK_CHANNEL}", row.ref_id, BOT_TOKEN)
        assert await redeliver(app) == 1
    assert rows(app)["slack"].status == "sent" and rows(app)["slack"].attempts == 2
    assert len(slack.posted(SLACK_CHANNEL)) == 1 and len(discord_api.messages) == 1


@pytest.mark.fault("slack: HTTP 5xx (message not stored)")
async def test_slack_5xx_retries_and_posts_once(server, tmp_path, db_url, caplog, slack, discord_api):
    slack.script("chat.postMessage", Scripted(status=503, error="service_unavailable"))
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin) as app:
        before = utcnow()
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "slack")
        row = rows(app)["slack"]
        assert row.status == "pending" and row.attempts == 1 and row.next_attempt_at > before
        assert "service_unavailable" in row.last_error
        assert_logged(caplog, f"slack:{SLACK_CHANNEL}", row.ref_id, BOT_TOKEN)
        assert slack.posted(SLACK_CHANNEL) == []
        assert await redeliver(app) == 1
    # The retry looked for an earlier copy first, found none, and posted once.
    assert len(slack.calls_to("conversations.history")) == 1
    assert len(slack.posted(SLACK_CHANNEL)) == 1 and rows(app)["slack"].status == "sent"


@pytest.mark.fault("slack: HTTP 5xx after the message was stored")
async def test_slack_5xx_after_landing_does_not_duplicate(server, tmp_path, db_url, caplog, slack, discord_api):
    slack.script("chat.postMessage", Scripted(status=500, error="internal_error", land_anyway=True))
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin) as app:
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "slack")
        assert len(slack.posted(SLACK_CHANNEL)) == 1  # it landed, but we were told it failed
        assert await redeliver(app) == 1
    landed = slack.posted(SLACK_CHANNEL)
    assert len(landed) == 1 and len(slack.calls_to("chat.postMessage")) == 1
    assert rows(app)["slack"].external_id == landed[0]["ts"]


@pytest.mark.fault("slack: unknown channel")
async def test_slack_unknown_channel_fails_permanently_with_the_fix(server, tmp_path, db_url, caplog, slack,
                                                                     discord_api):
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin,
                        slack_target="C0MISSING1") as app:
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "slack")
        row = rows(app)["slack"]
        assert row.status == "failed" and row.attempts == 1
        assert "channel_not_found" in row.last_error and "check the channel ID" in row.last_error
        assert any(r.levelno == logging.ERROR and "slack:C0MISSING1" in r.getMessage() for r in caplog.records)
        # A failed row is not retried behind the operator's back.
        assert await redeliver(app) == 0
    assert rows(app)["slack"].attempts == 1


@pytest.mark.fault("slack: revoked token")
async def test_slack_revoked_token_fails_permanently_without_leaking_it(server, tmp_path, db_url, caplog, slack,
                                                                        discord_api):
    revoked = "xoxb-9999-8888-revoked-secret-token"
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin,
                        slack_token=revoked) as app:
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "slack")
        row = rows(app)["slack"]
    assert row.status == "failed" and "invalid_auth" in row.last_error and "reinstall" in row.last_error
    assert revoked not in row.last_error and revoked not in log_text(caplog)
    assert slack.posted(SLACK_CHANNEL) == []


@pytest.mark.fault("slack: connection dropped after the post was sent")
async def test_slack_network_drop_after_send_does_not_duplicate(server, tmp_path, db_url, caplog, slack,
                                                                discord_api):
    with DropProxy(slack.api_url.rstrip("/").removesuffix("/api")) as proxy:
        proxy.drop("POST", "/api/chat.postMessage")
        async with chat_app(server, tmp_path, db_url, slack_url=proxy.base_url + "/api/",
                            discord_url=discord_api.origin) as app:
            await poll_and_deliver(app)
            assert proxy.dropped == ["/api/chat.postMessage"]
            assert_others_delivered(app, tmp_path, "slack")
            row = rows(app)["slack"]
            assert row.status == "pending" and row.attempts == 1 and "will retry" in row.last_error
            assert_logged(caplog, f"slack:{SLACK_CHANNEL}", row.ref_id, BOT_TOKEN)
            assert await redeliver(app) == 1
    landed = slack.posted(SLACK_CHANNEL)
    assert len(landed) == 1 and slack_keys(slack) == [f"briefbot:brief:{row.ref_id}:{row.id}"]
    assert rows(app)["slack"].status == "sent" and rows(app)["slack"].external_id == landed[0]["ts"]


# --------------------------------------------------------------------------- Discord

@pytest.mark.fault("discord: HTTP 429, short wait (retried in place)")
async def test_discord_short_429_is_retried_in_place(server, tmp_path, db_url, caplog, slack, discord_api):
    discord_api.rate_limit(DISCORD_PATH, retry_after=0.05)
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin) as app:
        await poll_and_deliver(app)
    assert all(r.status == "sent" for r in app.store.outbox_rows())
    assert len(discord_api.requests_to(DISCORD_PATH, "POST")) == 2 and len(discord_api.messages) == 1


@pytest.mark.fault("discord: HTTP 429 with a long Retry-After")
async def test_discord_long_429_goes_back_to_the_outbox(server, tmp_path, db_url, caplog, slack, discord_api):
    discord_api.rate_limit(DISCORD_PATH, retry_after=120)
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin) as app:
        before = utcnow()
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "discord")
        row = rows(app)["discord"]
        assert row.status == "pending" and row.attempts == 1 and "rate limited" in row.last_error
        assert row.next_attempt_at >= before + timedelta(seconds=120)
        assert_logged(caplog, f"discord:{DISCORD_CHANNEL}", row.ref_id, DISCORD_TOKEN)
        # Two minutes later (a new process: discord.py's bucket would have expired by then).
        await app.deliverers["discord"].aclose()
        app.deliverers["discord"] = DiscordDeliverer(DISCORD_TOKEN, discord_api.origin, settings=app.settings)
        assert await redeliver(app) == 1
    assert len(discord_api.messages) == 1 and rows(app)["discord"].status == "sent"


@pytest.mark.fault("discord: HTTP 5xx")
async def test_discord_5xx_retries_with_the_same_nonce(server, tmp_path, db_url, caplog, slack, discord_api):
    discord_api.fail(DISCORD_PATH, 503, message="upstream unavailable")
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin) as app:
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "discord")
        row = rows(app)["discord"]
        assert row.status == "pending" and "server error" in row.last_error
        assert_logged(caplog, f"discord:{DISCORD_CHANNEL}", row.ref_id, DISCORD_TOKEN)
        assert await redeliver(app) == 1
    posts = discord_api.requests_to(DISCORD_PATH, "POST")
    assert len(posts) == 2 and posts[0].payload["nonce"] == posts[1].payload["nonce"]
    assert len(discord_api.messages) == 1


@pytest.mark.fault("discord: unknown channel")
async def test_discord_unknown_channel_fails_permanently(server, tmp_path, db_url, caplog, slack, discord_api):
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin,
                        discord_target="999999999999999999") as app:
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "discord")
        row = rows(app)["discord"]
        assert row.status == "failed" and "unknown channel" in row.last_error and "Copy Channel ID" in row.last_error
        assert any(r.levelno == logging.ERROR and "discord:999999999999999999" in r.getMessage()
                   for r in caplog.records)
        assert await redeliver(app) == 0


@pytest.mark.fault("discord: revoked bot token")
async def test_discord_revoked_token_fails_permanently_without_leaking_it(server, tmp_path, db_url, caplog, slack,
                                                                          discord_api):
    revoked = "revoked-discord-token-abcdef123456"
    async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=discord_api.origin,
                        discord_token=revoked) as app:
        await poll_and_deliver(app)
        assert_others_delivered(app, tmp_path, "discord")
        row = rows(app)["discord"]
    assert row.status == "failed" and "401" in row.last_error and "Reset Token" in row.last_error
    assert revoked not in row.last_error and revoked not in log_text(caplog)
    assert discord_api.messages == []


@pytest.mark.fault("discord: connection dropped after the post was sent")
async def test_discord_network_drop_after_send_is_deduplicated_by_nonce(server, tmp_path, db_url, caplog, slack,
                                                                        discord_api):
    with DropProxy(discord_api.origin) as proxy:
        proxy.drop("POST", DISCORD_PATH)
        async with chat_app(server, tmp_path, db_url, slack_url=slack.api_url, discord_url=proxy.base_url) as app:
            await poll_and_deliver(app)
            assert proxy.dropped == ["/api/v10" + DISCORD_PATH]
            assert_others_delivered(app, tmp_path, "discord")
            row = rows(app)["discord"]
            assert row.status == "pending" and "network error" in row.last_error
            assert_logged(caplog, f"discord:{DISCORD_CHANNEL}", row.ref_id, DISCORD_TOKEN)
            assert len(discord_api.messages) == 1  # it landed; we could not know
            assert await redeliver(app) == 1
    posts = discord_api.requests_to(DISCORD_PATH, "POST")
    assert len(posts) == 2 and posts[0].payload["nonce"] == posts[1].payload["nonce"]
    assert len(discord_api.messages) == 1
    assert rows(app)["discord"].external_id == discord_api.messages[0]["id"]
