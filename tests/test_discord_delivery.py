"""Discord delivery against a loopback fake of Discord's REST API (real HTTP, real discord.py)."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone

import discord
import pytest
from discord.http import Route

from bot.config import Settings
from bot.app.container import parse_target
from bot.delivery.adapter import DeliveryError
from bot.adapters.discord.deliver import DEFAULT_API_BASE, DiscordDeliverer, delivery_nonce, normalise_api_base, set_api_base
from bot.adapters.discord.render import render_brief_compact, render_digest, topic_colour
from bot.models import Brief, Digest, DigestSection, Figure, Source
from fakes.discord_api import MISSING_ACCESS, UNKNOWN_CHANNEL, FakeDiscord

CHANNEL = "123456789012345678"
WEBHOOK_ID = "223456789012345678"
WEBHOOK_TOKEN = "Wh-" + "a1B2c3D4e5" * 7  # discord.py-shaped: 60+ characters
PUBLISHED = datetime(2025, 4, 4, 9, 30, tzinfo=timezone.utc)

SETTINGS = Settings.model_validate({
    "topics": {
        "rare-earths": {"label": {"en": "Rare earths", "zh": "稀土"}, "keywords": ["rare earth", "稀土"]},
        "tariffs": {"label": {"en": "Tariffs", "zh": "关税"}, "keywords": ["tariff", "关税"]},
    },
})


def english_brief(**overrides) -> Brief:
    data = dict(
        id="b_en0000000000001",
        topics=["rare-earths", "tariffs"],
        title={"en": "China adds seven rare earths to export control list",
               "zh": "中国将七种稀土列入出口管制清单"},
        summary={"en": "Beijing placed samarium, gadolinium and five other medium and heavy rare earths under "
                       "export licensing, days after Washington announced a 34% tariff on Chinese goods.",
                 "zh": "北京对钐、钆等七种中重稀土实施出口许可管理，此前美国宣布对中国商品加征34%关税。"},
        figures=[Figure(text="seven", value=7, unit="item", label={"en": "Elements", "zh": "元素"}),
                 Figure(text="34%", value=34, unit="%", label={"en": "US tariff", "zh": "美国关税"})],
        sources=[Source(url="https://news.example.com/rare-earth-controls", feed="metals-wire",
                        title="China adds seven rare earths to export control list", published=PUBLISHED),
                 Source(url="https://cn.example.com/xitu/0404", feed="caixin-cn",
                        title="七种稀土出口管制", published=PUBLISHED + timedelta(hours=1))],
        mode="extractive",
    )
    data.update(overrides)
    return Brief(**data)


def chinese_brief() -> Brief:
    """From a Chinese outlet, summarised extractively: no English text exists."""
    return Brief(
        id="b_zh0000000000001",
        topics=["rare-earths"],
        title={"zh": "工信部下达2025年第一批稀土开采总量控制指标"},
        summary={"zh": "工信部下达第一批稀土开采指标13.5万吨，冶炼分离指标12.7万吨，同比增长5.9%。"},
        figures=[Figure(text="13.5万吨", value=135000, unit="t", label={"zh": "开采指标"}),
                 Figure(text="5.9%", value=5.9, unit="%", label={})],
        sources=[Source(url="https://cn.example.com/quota", feed="miit-cn", title="稀土开采指标",
                        published=PUBLISHED)],
        mode="llm",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def fake():
    server = await FakeDiscord().start()
    server.add_channel(CHANNEL)
    yield server
    await server.stop()
    set_api_base(None)


@pytest.fixture
async def deliverer(fake):
    d = DiscordDeliverer(fake.bot_token, api_base=fake.origin, settings=SETTINGS)
    yield d
    await d.aclose()


def channel_posts(fake: FakeDiscord) -> list:
    return fake.requests_to(f"/channels/{CHANNEL}/messages", "POST")


# --------------------------------------------------------------------------- payloads

async def test_english_brief_embed_payload(fake, deliverer):
    brief = english_brief()
    message_id = await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), brief,
                                               delivery_key="brief:b_en:discord", attempt=1)

    assert len(fake.messages) == 1
    sent = fake.messages[0]
    assert message_id == sent["id"]
    request = channel_posts(fake)[0]
    assert request.headers["Authorization"] == f"Bot {fake.bot_token}"
    payload = sent["payload"]
    assert payload["allowed_mentions"] == {"parse": []}
    assert payload["nonce"] == delivery_nonce("brief:b_en:discord") and len(payload["nonce"]) <= 25
    assert payload["enforce_nonce"] is True
    (embed,) = payload["embeds"]
    assert embed["title"] == "China adds seven rare earths to export control list"
    assert embed["url"] == "https://news.example.com/rare-earth-controls"
    description = embed["description"]
    assert description.startswith("Beijing placed samarium")
    assert "**中国将七种稀土列入出口管制清单**" in description
    assert "北京对钐、钆等七种中重稀土实施出口许可管理" in description
    assert description.index("Beijing") < description.index("北京")
    figures = [f for f in embed["fields"] if f["inline"]]
    assert figures == [{"name": "Elements / 元素", "value": "seven", "inline": True},
                       {"name": "US tariff / 美国关税", "value": "34%", "inline": True}]
    sources = [f for f in embed["fields"] if not f["inline"]]
    assert sources[0]["name"].startswith("Sources / 来源")
    assert "https://cn.example.com/xitu/0404" in sources[0]["value"]
    assert embed["footer"]["text"] == "metals-wire, caixin-cn · Rare earths / 稀土, Tariffs / 关税"
    assert datetime.fromisoformat(embed["timestamp"]) == PUBLISHED
    assert embed["color"] == topic_colour("rare-earths").value
    assert "Extractive" in embed["author"]["name"] and "摘录" in embed["author"]["name"]


async def test_chinese_brief_embed_payload(fake, deliverer):
    await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), chinese_brief(),
                                  delivery_key="brief:b_zh:discord", attempt=1)

    (embed,) = fake.messages[0]["payload"]["embeds"]
    # No English title: the Chinese one heads the embed instead of an empty title.
    assert embed["title"] == "工信部下达2025年第一批稀土开采总量控制指标"
    assert embed["description"] == "工信部下达第一批稀土开采指标13.5万吨，冶炼分离指标12.7万吨，同比增长5.9%。"
    assert embed["fields"] == [{"name": "开采指标", "value": "13.5万吨", "inline": True},
                               {"name": "Figure 2 / 数字 2", "value": "5.9%", "inline": True}]
    assert embed["footer"]["text"] == "miit-cn · Rare earths / 稀土"
    assert "AI summary" in embed["author"]["name"]
    assert embed["color"] == topic_colour("rare-earths").value
    assert topic_colour("rare-earths") == topic_colour("rare-earths")
    assert topic_colour("rare-earths") != topic_colour("tariffs")


async def test_embed_limits_are_respected_by_trimming(fake, deliverer):
    long_en = "Rare earth magnet exports fell sharply. " * 200  # ~8,000 characters
    long_zh = "稀土永磁出口大幅下降。" * 600  # ~6,600 characters
    brief = english_brief(
        title={"en": "Tariff " * 80, "zh": "关税" * 200},
        summary={"en": long_en, "zh": long_zh},
        figures=[Figure(text=f"{i}% " + "x" * 2000, label={"en": "Label " * 60, "zh": "标签" * 10})
                 for i in range(30)],
        sources=[Source(url=f"https://news.example.com/{i}", feed="metals-wire", title="Story " * 30)
                 for i in range(40)],
    )
    await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), brief, delivery_key="k-limits", attempt=1)

    (embed,) = fake.messages[0]["payload"]["embeds"]
    assert len(embed["title"]) <= 256 and embed["title"].endswith("…")
    assert len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    total = (len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
             + len(embed["author"]["name"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]))
    assert total <= 6000
    # Both languages survive the trim: English cannot crowd the Chinese summary out.
    assert "Rare earth magnet exports" in embed["description"]
    assert "稀土永磁出口大幅下降" in embed["description"]


async def test_mentions_never_ping_on_any_message(fake, deliverer):
    fake.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    brief = english_brief(title={"en": "@everyone tariffs on rare earths @here <@&111111111111111111>",
                                 "zh": "@everyone 稀土关税"},
                          summary={"en": "<@222222222222222222> says magnets are up 12%.", "zh": "磁材上涨12%。"})
    await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), brief, delivery_key="k1", attempt=1)
    await deliverer.deliver_brief(parse_target(f"discord-webhook:https://discord.com/api/webhooks/"
                                               f"{WEBHOOK_ID}/{WEBHOOK_TOKEN}"), brief,
                                  delivery_key="k2", attempt=1)

    payloads = fake.sent_payloads()
    assert len(payloads) == 2
    for payload in payloads:
        assert payload["allowed_mentions"] == {"parse": []}
        # The text is posted as written; it is the allowed_mentions that keeps it from pinging.
        assert payload["embeds"][0]["title"].startswith("@everyone tariffs")


async def test_webhook_delivery_goes_to_the_api_base(fake, deliverer):
    url = fake.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    assert url.startswith("https://discord.com/")  # the configured URL names the real host...
    message_id = await deliverer.deliver_brief(parse_target(f"discord-webhook:{url}"), english_brief(),
                                               delivery_key="k-webhook", attempt=1)

    # ...and still reached the fake at DISCORD_API_BASE_URL.
    (execution,) = fake.webhook_executions
    assert message_id == execution["id"]
    assert execution["query"]["wait"] == "1"
    assert execution["payload"]["allowed_mentions"] == {"parse": []}
    assert execution["payload"]["embeds"][0]["title"] == "China adds seven rare earths to export control list"
    request = fake.requests_to(f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}")[0]
    assert "Authorization" not in request.headers  # the bot token is never sent to a webhook
    assert fake.messages == []


def test_api_base_normalisation():
    assert normalise_api_base(None) == DEFAULT_API_BASE
    assert normalise_api_base("http://127.0.0.1:9000") == "http://127.0.0.1:9000/api/v10"
    assert normalise_api_base("http://127.0.0.1:9000/api/") == "http://127.0.0.1:9000/api/v10"
    assert normalise_api_base("https://proxy.example/discord/api/v10/") == "https://proxy.example/discord/api/v10"
    set_api_base("http://127.0.0.1:9000")
    try:
        assert Route("POST", "/channels/{channel_id}/messages", channel_id=1).url == \
            "http://127.0.0.1:9000/api/v10/channels/1/messages"
    finally:
        set_api_base(None)
    assert Route.BASE == DEFAULT_API_BASE


# --------------------------------------------------------------------------- rate limits and errors

async def test_429_is_retried_and_posts_exactly_once(fake, deliverer):
    fake.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=0.05)
    message_id = await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(),
                                               delivery_key="k-429", attempt=1)
    assert len(channel_posts(fake)) == 2
    assert len(fake.messages) == 1 and message_id == fake.messages[0]["id"]


async def test_webhook_429_is_retried_and_posts_exactly_once(fake, deliverer):
    url = fake.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    fake.rate_limit(f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}", retry_after=0.05)
    await deliverer.deliver_brief(parse_target(f"discord-webhook:{url}"), english_brief(),
                                  delivery_key="k-w429", attempt=1)
    assert len(fake.requests_to(f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}")) == 2
    assert len(fake.webhook_executions) == 1


async def test_persistent_429_becomes_a_retryable_error(fake, deliverer):
    fake.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=0.02, times=5)
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(),
                                      delivery_key="k-429x", attempt=1)
    assert info.value.permanent is False
    assert info.value.retry_after == pytest.approx(0.02)
    assert fake.messages == []


async def test_long_rate_limit_is_handed_back_to_the_outbox(fake, deliverer):
    # Longer than max_ratelimit_timeout: raise at once instead of blocking the outbox for minutes.
    fake.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=600)
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(),
                                      delivery_key="k-long", attempt=1)
    assert info.value.permanent is False and info.value.retry_after == 600


async def test_cloudflare_429_without_via_is_retryable(fake, deliverer):
    fake.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=30, via=False)
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(),
                                      delivery_key="k-cf", attempt=1)
    assert info.value.permanent is False and info.value.retry_after == 30
    assert len(channel_posts(fake)) == 1  # discord.py does not hammer a Cloudflare block


async def test_unknown_channel_is_permanent(fake, deliverer):
    other = "999999999999999999"
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver_brief(parse_target(f"discord:{other}"), english_brief(), delivery_key="k",
                                      attempt=1)
    err = info.value
    assert err.permanent is True
    assert f"discord:{other}" in str(err) and "Unknown Channel" in str(err) and str(UNKNOWN_CHANNEL) in str(err)
    assert "Fix:" in str(err)
    assert len(fake.requests_to(f"/channels/{other}/messages")) == 1  # not retried


async def test_missing_access_is_permanent(fake, deliverer):
    fake.fail(f"/channels/{CHANNEL}/messages", 403, MISSING_ACCESS)
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(), delivery_key="k",
                                      attempt=1)
    assert info.value.permanent is True
    assert "Missing Access" in str(info.value) and "Send Messages" in str(info.value)


async def test_invalid_bot_token_is_permanent_and_not_leaked(fake):
    d = DiscordDeliverer("wrong-token-abcdef", api_base=fake.origin, settings=SETTINGS)
    try:
        with pytest.raises(DeliveryError) as info:
            await d.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(), delivery_key="k", attempt=1)
    finally:
        await d.aclose()
    assert info.value.permanent is True
    assert "401" in str(info.value) and "DISCORD_BOT_TOKEN" in str(info.value)
    assert "wrong-token-abcdef" not in str(info.value)
    assert fake.messages == []


async def test_missing_bot_token_is_permanent(fake):
    d = DiscordDeliverer(None, api_base=fake.origin, settings=SETTINGS)
    with pytest.raises(DeliveryError) as info:
        await d.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(), delivery_key="k", attempt=1)
    await d.aclose()
    assert info.value.permanent is True and "DISCORD_BOT_TOKEN" in str(info.value)
    assert fake.requests == []


async def test_unknown_webhook_is_permanent_and_token_redacted(fake, deliverer):
    url = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"  # never registered with the fake
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver_brief(parse_target(f"discord-webhook:{url}"), english_brief(), delivery_key="k",
                                      attempt=1)
    assert info.value.permanent is True
    assert "Unknown Webhook" in str(info.value)
    assert WEBHOOK_TOKEN not in str(info.value)
    assert f"webhooks/{WEBHOOK_ID}/***" in str(info.value)


async def test_server_error_is_retryable(fake, deliverer):
    fake.fail(f"/channels/{CHANNEL}/messages", 503, message="upstream unavailable")
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(), delivery_key="k",
                                      attempt=1)
    assert info.value.permanent is False


async def test_network_error_is_retryable():
    d = DiscordDeliverer("some-bot-token-123", api_base=f"http://127.0.0.1:{free_port()}", settings=SETTINGS)
    try:
        with pytest.raises(DeliveryError) as info:
            await d.deliver_brief(parse_target(f"discord:{CHANNEL}"), english_brief(), delivery_key="k",
                                  attempt=1)
    finally:
        await d.aclose()
        set_api_base(None)
    assert info.value.permanent is False
    assert "network error" in str(info.value) and "some-bot-token-123" not in str(info.value)


# --------------------------------------------------------------------------- duplicates

async def test_retry_after_a_crash_reuses_the_nonce(fake, deliverer):
    target = parse_target(f"discord:{CHANNEL}")
    first = await deliverer.deliver_brief(target, english_brief(), delivery_key="outbox:17", attempt=1)
    # The outbox did not record the first success (crash): attempt 2 sends the same nonce.
    second = await deliverer.deliver_brief(target, english_brief(), delivery_key="outbox:17", attempt=2)
    nonces = [r.payload["nonce"] for r in channel_posts(fake)]
    assert nonces == [delivery_nonce("outbox:17")] * 2
    assert all(r.payload["enforce_nonce"] is True for r in channel_posts(fake))
    assert first == second and len(fake.messages) == 1
    third = await deliverer.deliver_brief(target, english_brief(), delivery_key="outbox:18", attempt=1)
    assert third != first and len(fake.messages) == 2


# --------------------------------------------------------------------------- digests and lists

def _digest(n_per_topic: int) -> Digest:
    now = PUBLISHED + timedelta(hours=12)
    sections = []
    for topic, label in (("rare-earths", {"en": "Rare earths", "zh": "稀土"}),
                         ("tariffs", {"en": "Tariffs", "zh": "关税"})):
        briefs = [english_brief(id=f"b_{topic}_{i:03d}", topics=[topic],
                                title={"en": f"{label['en']} story {i}: " + "export licences tightened " * 4,
                                       "zh": f"{label['zh']}新闻{i}：" + "出口许可收紧" * 8},
                                sources=[Source(url=f"https://news.example.com/{topic}/{i}", feed="metals-wire",
                                                title=f"story {i}", published=PUBLISHED)])
                  for i in range(n_per_topic)]
        sections.append(DigestSection(topic=topic, label=label, count=n_per_topic + 3, briefs=briefs))
    return Digest(name="morning", title={"en": "Morning brief", "zh": "早间简报"},
                  window_start=now - timedelta(hours=24), window_end=now, timezone="Asia/Shanghai",
                  sections=sections)


async def test_digest_is_split_between_items_in_order(fake, deliverer):
    digest = _digest(60)
    ids = await deliverer.deliver_digest(parse_target(f"discord:{CHANNEL}"), digest, delivery_key="digest:morning",
                                         attempt=1)
    assert len(fake.messages) >= 2
    assert ids == ",".join(m["id"] for m in fake.messages)
    nonces = [m["payload"]["nonce"] for m in fake.messages]
    assert len(set(nonces)) == len(nonces)
    text = []
    for message in fake.messages:
        payload = message["payload"]
        assert payload["allowed_mentions"] == {"parse": []}
        embeds = payload["embeds"]
        assert 1 <= len(embeds) <= 10
        size = sum(len(e.get("title", "")) + len(e.get("description", "")) + len(e.get("footer", {}).get("text", ""))
                   for e in embeds)
        assert size <= 6000
        text += [e.get("description", "") for e in embeds]
    joined = "\n".join(text)
    first_header = fake.messages[0]["payload"]["embeds"][0]
    assert first_header["title"] == "Morning brief / 早间简报"
    assert "Rare earths: 63 stories / 稀土：63 条" in first_header["description"]
    # Every story appears whole, exactly once, and in rank order across messages.
    positions = []
    for topic in ("rare-earths", "tariffs"):
        for i in range(60):
            url = f"https://news.example.com/{topic}/{i})"
            assert joined.count(url) == 1
            positions.append(joined.index(url))
    assert positions == sorted(positions)
    for description in text[1:]:
        for item in description.split("\n\n"):
            assert item.startswith("**") and "[source / 原文](https://news.example.com/" in item


def test_empty_digest_says_nothing_new():
    digest = _digest(0)
    messages = render_digest(digest, SETTINGS)
    assert len(messages) == 1 and len(messages[0]) == 1
    description = messages[0][0].description
    assert "briefbot is running" in description and "运行正常" in description


def test_ten_compact_briefs_fit_in_one_message():
    brief = english_brief(summary={"en": "Prices climbed. " * 300, "zh": "价格上涨。" * 500},
                          title={"en": "T" * 300, "zh": "标" * 300})
    embeds = [render_brief_compact(brief, SETTINGS) for _ in range(10)]
    assert sum(len(e) for e in embeds) <= 6000
    assert all(e.url == "https://news.example.com/rare-earth-controls" for e in embeds)
    assert "价格上涨" in embeds[0].description and "Key figures" in embeds[0].description
    assert isinstance(embeds[0], discord.Embed)


async def test_every_outbox_kind_reaches_discord_through_the_adapter(fake):
    """The adapter's deliverer (bot channels and webhooks behind one object) posts each kind the
    outbox hands it: a kind it lacked would fail permanently as 'this adapter cannot post …'."""
    from bot.adapters.discord import DiscordAdapter
    from bot.alerts import Alert
    from bot.config import Env
    from bot.delivery.adapter import AdapterContext
    from bot.models import Notice

    env = Env.from_environ({"DISCORD_BOT_TOKEN": fake.bot_token, "DISCORD_API_BASE_URL": fake.origin})
    deliverer = DiscordAdapter().deliverer(AdapterContext(env=env, settings=lambda: SETTINGS, commands=None))
    target = parse_target(f"discord:{CHANNEL}")
    notice = Notice(id="n_1", feed="flood", count=42, topics=["tariffs"],
                    headlines=[Source(url="https://wire.example/t/1", feed="flood", title="US sets tariff")])
    alert = Alert(id="i1:open", phase="open", kind="feed-failing", subject="metals-wire", detail="HTTP 503",
                  since=PUBLISHED, at=PUBLISHED + timedelta(hours=6))
    try:
        await deliverer.deliver_brief(target, english_brief(), delivery_key="k1", attempt=1)
        await deliverer.deliver_digest(target, _digest(1), delivery_key="k2", attempt=1)
        await deliverer.deliver_notice(target, notice, delivery_key="k3", attempt=1)
        await deliverer.deliver_alert(target, alert, delivery_key="k4", attempt=1)
    finally:
        await deliverer.aclose()
    shown = json.dumps([r.payload for r in channel_posts(fake)], ensure_ascii=False)
    assert len(channel_posts(fake)) >= 4
    assert "42 more items from feed flood" in shown and "metals-wire" in shown
