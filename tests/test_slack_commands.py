"""`/brief` over Bolt: signed slash-command POSTs to the app's real HTTP endpoint on loopback,
answers captured at the fake Slack's response_url; plus one round trip in Socket Mode."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from storedata import save_brief

from bot.app.container import App
from bot.config import Env, Settings
from bot.models import Brief, Figure, Source, utcnow
from bot.adapters.slack.commands import build_slack_app, start_slack
from bot.store import ItemRecord, Store
from chat_fixtures import slack  # noqa: F401  (pytest fixture)
from fakes.slack_api import APP_TOKEN, BOT_TOKEN, FakeSlack
from waits import async_wait_until

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FEED_SECRET = "feedkey-ABC123SECRET"


def make_settings() -> Settings:
    return Settings.model_validate({
        "timezone": "Asia/Shanghai",
        "topics": {
            "rare_earths": {"label": {"en": "Rare earths", "zh": "稀土"}, "keywords": ["rare earth", "稀土"]},
            "tariffs": {"label": {"en": "Tariffs", "zh": "关税"}, "keywords": ["tariff", "关税"]},
        },
        "feeds": [{"name": "metals-wire", "url": f"https://metals.example.com/rss?key={FEED_SECRET}"},
                  {"name": "cn-trade", "url": "https://news.example.cn/trade/rss.xml"}],
    })


def brief(n: int, topic: str, en: str, zh: str, figure: str, minutes_ago: int) -> Brief:
    created = utcnow() - timedelta(minutes=minutes_ago)
    return Brief(
        id=f"b_{n:016d}", topics=[topic], title={"en": en, "zh": zh},
        summary={"en": f"{en}. Officials gave no timetable.", "zh": f"{zh}。官方未给出时间表。"},
        figures=[Figure(text=figure, label={"en": "Key figure", "zh": "关键数据"})],
        sources=[Source(url=f"https://metals.example.com/news/{n}", feed="metals-wire", title=en,
                        published=created)],
        mode="extractive", created=created,
    )


BRIEFS = [
    brief(1, "rare_earths", "Myanmar rare earth shipments to China fall 40%", "缅甸对华稀土发运量下降40%", "40%", 300),
    brief(2, "rare_earths", "Dysprosium oxide hits $290 per kg", "氧化镝价格升至每公斤290美元", "$290 per kg", 200),
    brief(3, "rare_earths", "Lynas lifts NdPr output to 2,000 tonnes", "莱纳斯将镨钕产量提高至2000吨", "2,000 tonnes", 100),
    brief(4, "tariffs", "US raises tariff on Chinese magnets to 25%", "美国将中国磁体关税上调至25%", "25%", 50),
    brief(5, "tariffs", "<!channel> EU probes gallium imports <@U0ALL>", "欧盟调查镓进口", "3.2亿元", 10),
]


@pytest.fixture
def store(db_url):
    store = Store(db_url)
    store.create()
    for i, b in enumerate(BRIEFS):
        item = ItemRecord(feed="metals-wire", item_key=f"item-{i}", guid=f"g{i}", link=b.primary_url,
                          link_key=b.primary_url, content_key=None, title=b.title["en"],
                          published=b.created, status="briefed", topics=b.topics)
        assert save_brief(store, b, item, targets=[], signature=None, language="en", now=b.created)
    store.ensure_feed("metals-wire", f"https://metals.example.com/rss?key={FEED_SECRET}")
    store.update_feed("metals-wire", last_fetch_at=utcnow(), last_success_at=utcnow(), last_status="ok",
                      failures=0, items_total=42)
    store.ensure_feed("cn-trade", "https://news.example.cn/trade/rss.xml")
    store.update_feed("cn-trade", last_fetch_at=utcnow(), last_status="error", failures=3,
                      last_error=f"HTTP 503 from https://news.example.cn/trade/rss.xml?key={FEED_SECRET}")
    yield store
    store.close()


def make_app(slack: FakeSlack, store: Store, db_url: str, **env) -> App:
    environ = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_BASE_URL": slack.api_url.rstrip("/"), "PORT": "0", "DATABASE_URL": db_url, **env}
    return App(settings=make_settings(), env=Env.from_environ(environ), store=store)


@pytest.fixture
async def http_app(slack, store, db_url):
    app = make_app(slack, store, db_url)
    runner = await start_slack(app.adapter_context(), host="127.0.0.1")
    assert runner is not None and runner.mode == "http"
    yield runner
    await runner.stop()


def command_form(text: str, response_url: str) -> str:
    return urlencode({
        "token": "deprecated-verification-token", "team_id": "T0TEST001", "team_domain": "briefbot-test",
        "channel_id": "C0BRIEFS1", "channel_name": "rare-earths", "user_id": "U0ANALYST", "user_name": "analyst",
        "command": "/brief", "text": text, "api_app_id": "A0TEST001", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": "1234.5678.abcd",
    })


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


async def post_command(port: int, body: str, *, timestamp: int | None = None, signature: str | None = None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": str(timestamp),
               "X-Slack-Signature": signature or sign(body, timestamp)}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp:
            return resp.status, await resp.text()


async def run_command(slack: FakeSlack, runner, text: str, name: str, expected_messages: int = 1) -> list[dict]:
    before = len(slack.responses)
    status, _ = await post_command(runner.port, command_form(text, slack.response_url(name)))
    assert status == 200
    await slack.async_wait_for_responses(before + expected_messages)
    answers = [r for r in slack.responses if r["_path"] == f"/response/{name}"]
    assert len(answers) == expected_messages
    return answers


def all_text(answer: dict) -> str:
    parts = [answer.get("text", "")]
    for block in answer.get("blocks", []):
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e["text"] for e in block.get("elements", [])]
    return "\n".join(parts)


# --------------------------------------------------------------------------- request verification

async def test_the_bolt_app_refuses_unsigned_and_missigned_requests(slack, store, db_url):
    """The app build_slack_app returns verifies Slack's signature itself, whatever serves it."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    bolt = build_slack_app(make_app(slack, store, db_url).adapter_context())
    body = command_form("help", slack.response_url("direct"))
    ts = int(time.time())
    form = {"content-type": ["application/x-www-form-urlencoded"]}
    unsigned = await bolt.async_dispatch(AsyncBoltRequest(body=body, headers=form))
    missigned = await bolt.async_dispatch(AsyncBoltRequest(body=body, headers={
        **form, "x-slack-request-timestamp": [str(ts)], "x-slack-signature": [sign(body, ts, "not-the-secret")]}))
    signed = await bolt.async_dispatch(AsyncBoltRequest(body=body, headers={
        **form, "x-slack-request-timestamp": [str(ts)], "x-slack-signature": [sign(body, ts)]}))
    assert (unsigned.status, missigned.status, signed.status) == (401, 401, 200)
    # Only the signed command is answered.
    await slack.async_wait_for_responses(1)
    assert [r["_path"] for r in slack.responses] == ["/response/direct"]


async def test_bad_signature_is_rejected(slack, http_app):
    body = command_form("help", slack.response_url("bad"))
    status, _ = await post_command(http_app.port, body, signature=sign(body, int(time.time()), "not-the-secret"))
    assert status == 401
    # A body altered after signing fails too.
    ts = int(time.time())
    status, _ = await post_command(http_app.port, body.replace("help", "feeds"), timestamp=ts, signature=sign(body, ts))
    assert status == 401
    # A correctly signed command sent after them is answered; the refused ones never are.
    await run_command(slack, http_app, "help", "after")
    assert [r["_path"] for r in slack.responses] == ["/response/after"]


async def test_stale_timestamp_is_rejected(slack, http_app):
    body = command_form("help", slack.response_url("old"))
    old = int(time.time()) - 6 * 60  # correctly signed, but older than Slack's 5-minute window
    status, _ = await post_command(http_app.port, body, timestamp=old, signature=sign(body, old))
    assert status == 401
    assert slack.responses == []


# --------------------------------------------------------------------------- subcommands

async def test_help(slack, http_app):
    for text in ("", "help"):
        [answer] = await run_command(slack, http_app, text, f"help-{text or 'empty'}")
        body = all_text(answer)
        assert answer["response_type"] == "ephemeral"
        assert "/brief &lt;topic&gt; [N]" in body and "/brief digest" in body and "/brief search" in body
        assert "`rare_earths` (Rare earths / 稀土)" in body and "`tariffs` (Tariffs / 关税)" in body
    # The slash command was authorised with auth.test against the (fake) Web API.
    assert slack.calls_to("auth.test")


async def test_topic_latest_default_and_count(slack, http_app):
    [answer] = await run_command(slack, http_app, "rare_earths", "latest")
    body = all_text(answer)
    assert answer["response_type"] == "ephemeral"
    assert "*Latest 5 — Rare earths / 稀土*" in body
    # Newest first, compact bilingual form with link, figure, feed and local time.
    order = [body.index(t) for t in ("Lynas lifts NdPr", "Dysprosium oxide", "Myanmar rare earth")]
    assert order == sorted(order)
    assert "<https://metals.example.com/news/3|Lynas lifts NdPr output to 2,000 tonnes>" in body
    assert "莱纳斯将镨钕产量提高至2000吨" in body and "2,000 tonnes" in body
    assert "metals-wire · " in body and "CST" in body
    assert "US raises tariff" not in body

    [answer] = await run_command(slack, http_app, "稀土 2", "latest-2")  # a label works, N limits
    body = all_text(answer)
    assert "*Latest 2 — Rare earths / 稀土*" in body
    assert "Lynas lifts" in body and "Dysprosium" in body and "Myanmar" not in body


async def test_unknown_topic_suggests_and_is_ephemeral_even_if_public(slack, http_app):
    [answer] = await run_command(slack, http_app, "rare_eart public", "unknown")
    body = all_text(answer)
    assert answer["response_type"] == "ephemeral"
    assert "Unknown topic 'rare_eart'" in body and "Did you mean rare_earths?" in body
    assert "Topics: rare_earths, tariffs" in body


async def test_digest(slack, http_app):
    [answer] = await run_command(slack, http_app, "digest", "digest")
    body = all_text(answer)
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["type"] == "header"
    assert "Rare earths / 稀土: 3" in body and "Tariffs / 关税: 2" in body
    assert "<https://metals.example.com/news/4|US raises tariff on Chinese magnets to 25%> — *25%*" in body
    # Feed text stays escaped in the digest too.
    assert "&lt;!channel&gt; EU probes gallium imports &lt;@U0ALL&gt;" in body and "<!channel>" not in body


async def test_feeds_health_shows_no_urls(slack, http_app):
    [answer] = await run_command(slack, http_app, "feeds", "feeds")
    body = all_text(answer)
    assert "*Feed health* — 2 feeds, 1 with problems" in body
    assert "*metals-wire* — ok" in body and "items 42" in body
    assert "*cn-trade* — error" in body and "failures 3" in body and "HTTP 503 from [url hidden]" in body
    assert FEED_SECRET not in body and "example.cn" not in body and "metals.example.com" not in body


async def test_search_in_either_language(slack, http_app):
    [answer] = await run_command(slack, http_app, "search dysprosium", "search-en")
    body = all_text(answer)
    assert "*Search:* dysprosium" in body and "Dysprosium oxide hits $290 per kg" in body
    assert "Lynas" not in body
    [answer] = await run_command(slack, http_app, "search 镓进口", "search-zh")
    assert "欧盟调查镓进口" in all_text(answer)
    [answer] = await run_command(slack, http_app, "search yttrium", "search-none")
    assert "No briefs match yttrium." in all_text(answer)
    [answer] = await run_command(slack, http_app, "search", "search-empty")
    assert "search needs words" in all_text(answer)


async def test_public_answers_in_channel(slack, http_app):
    [answer] = await run_command(slack, http_app, "tariffs 1 public", "public")
    assert answer["response_type"] == "in_channel"
    body = all_text(answer)
    assert "*Latest 1 — Tariffs / 关税*" in body and "EU probes gallium imports" in body
    assert "US raises tariff" not in body


# --------------------------------------------------------------------------- modes

async def test_start_slack_needs_a_way_to_receive_commands(slack, store, db_url):
    app = make_app(slack, store, db_url, SLACK_SIGNING_SECRET="")
    assert await start_slack(app.adapter_context()) is None


async def test_socket_mode_round_trip(slack, store, db_url):
    app = make_app(slack, store, db_url, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    runner = await start_slack(app.adapter_context())
    try:
        assert runner.mode == "socket"
        assert slack.calls_to("apps.connections.open")[0].token == APP_TOKEN
        await async_wait_until(slack.socket_connected, "the Socket Mode client to connect to the fake Slack")
        payload = dict(parse_qsl(command_form("tariffs", "unused")))
        payload.update({"text": "tariffs", "response_url": slack.response_url("socket")})
        slack.send_socket_envelope({"envelope_id": "env-1", "type": "slash_commands", "payload": payload,
                                    "accepts_response_payload": True})
        [answer] = await slack.async_wait_for_responses(1)
        assert "*Latest 5 — Tariffs / 关税*" in all_text(answer)
        assert any(ack.get("envelope_id") == "env-1" for ack in slack.socket_acks)
    finally:
        await runner.stop()
