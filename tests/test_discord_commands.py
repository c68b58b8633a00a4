"""The `/brief` app command, driven through discord.py's own interaction machinery.

Each test runs the bot's gateway session against the loopback fake of Discord and sends it a raw
INTERACTION_CREATE payload over that gateway, as Discord does; the CommandTree resolves the
subcommand and options, the command answers from a real store, and the response goes over real
HTTP to the fake's REST API, where the test reads it.
"""

from __future__ import annotations

import asyncio
import itertools
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from storedata import save_brief

from bot.app.container import App
from bot.config import Env, Settings
from bot.adapters.discord.deliver import set_api_base
from bot.adapters.discord.commands import DISCORD_GATEWAY, start_discord, sync_commands, topic_suggestions
from bot.models import Brief, Figure, Source, utcnow
from bot.store import ItemRecord, Store
from fakes.discord_api import APPLICATION_ID, FakeDiscord

EPHEMERAL = 64
CHANNEL_MESSAGE = 4
DEFERRED = 5

TOPICS = {
    "rare-earths": {"label": {"en": "Rare earths", "zh": "稀土"}, "keywords": ["rare earth", "稀土"]},
    "tariffs": {"label": {"en": "Tariffs", "zh": "关税"}, "keywords": ["tariff", "关税"]},
}
_ids = itertools.count(1_300_000_000_000_000_001)


def make_brief(n: int, topic: str, en: str, zh: str, figure: str, created_ago: timedelta) -> Brief:
    created = utcnow() - created_ago
    return Brief(
        id=f"b_{topic[:4]}{n:012d}",
        topics=[topic],
        title={"en": en, "zh": zh},
        summary={"en": f"{en}. Officials cited {figure} in the notice.", "zh": f"{zh}。通知中提到{figure}。"},
        figures=[Figure(text=figure, label={"en": "Key figure", "zh": "关键数字"})],
        sources=[Source(url=f"https://news.example.com/{topic}/{n}", feed="metals-wire", title=en,
                        published=created)],
        mode="extractive",
        created=created,
    )


BRIEFS = [
    make_brief(1, "rare-earths", "China sets first 2025 rare earth mining quota", "中国下达2025年第一批稀土开采指标",
               "135,000 tonnes", timedelta(hours=5)),
    make_brief(2, "rare-earths", "Gallium export licences slow to a trickle", "镓出口许可审批放缓",
               "60%", timedelta(hours=3)),
    make_brief(3, "rare-earths", "Magnet makers stockpile dysprosium", "磁材企业囤积镝",
               "3 months", timedelta(hours=1)),
    make_brief(4, "tariffs", "US raises tariff on Chinese magnets to 25%", "美国对中国磁体加征关税至25%",
               "25%", timedelta(hours=2)),
]


@pytest.fixture
async def fake():
    server = await FakeDiscord().start()
    yield server
    await server.stop()
    set_api_base(None)


@pytest.fixture
def app(db_url, fake):
    store = Store(db_url)
    store.create()
    settings = Settings.model_validate({"topics": TOPICS, "feeds": [
        {"name": "metals-wire", "url": "https://news.example.com/feed.xml"},
        {"name": "customs-cn", "url": "https://cn.example.com/rss"},
    ]})
    for i, brief in enumerate(BRIEFS):
        item = ItemRecord(feed="metals-wire", item_key=f"item-{i}", guid=f"guid-{i}", link=brief.primary_url,
                          link_key=None, content_key=None, title=brief.title["en"], published=brief.published,
                          status="briefed", topics=brief.topics)
        assert save_brief(store, brief, item, [], None, language="en", now=brief.created)
    store.ensure_feed("metals-wire", "https://news.example.com/feed.xml")
    store.update_feed("metals-wire", last_status="ok", last_success_at=utcnow(), last_fetch_at=utcnow())
    store.ensure_feed("customs-cn", "https://cn.example.com/rss")
    store.update_feed("customs-cn", last_status="error", failures=3, last_error="HTTP 503 from server",
                      next_poll_at=utcnow() + timedelta(minutes=20))
    env = Env.from_environ({"DISCORD_BOT_TOKEN": fake.bot_token, "DISCORD_API_BASE_URL": fake.origin,
                            "DATABASE_URL": db_url})
    yield App(settings=settings, env=env, store=store)
    store.close()


@asynccontextmanager
async def gateway_session(app, fake):
    """The bot's own gateway session (as `briefbot run` starts it), identified with the fake."""
    runner = await start_discord(app.adapter_context())
    try:
        await asyncio.wait_for(fake.identified.wait(), 30)
        yield runner.client
    finally:
        await runner.stop()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(DISCORD_GATEWAY)


@pytest.fixture
async def client(app, fake):
    async with gateway_session(app, fake) as bot:
        yield bot


def option(name: str, value) -> dict:
    kind = 5 if isinstance(value, bool) else 4 if isinstance(value, int) else 3
    return {"type": kind, "name": name, "value": value}


def interaction_payload(subcommand: str, *options: dict, interaction_type: int = 2) -> dict:
    """An INTERACTION_CREATE payload for `/brief <subcommand> ...` in a guild text channel."""
    interaction_id = str(next(_ids))
    return {
        "id": interaction_id,
        "application_id": APPLICATION_ID,
        "type": interaction_type,
        "token": f"itoken-{interaction_id}",
        "version": 1,
        "guild_id": "700000000000000001",
        "channel_id": "700000000000000002",
        "member": {"user": {"id": "700000000000000003", "username": "analyst", "discriminator": "0",
                            "global_name": "On-call analyst", "avatar": None},
                   "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                   "flags": 0, "permissions": "2248473465835073"},
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": "700000000000000001"},
        "context": 0,
        "attachment_size_limit": 10485760,
        "data": {"id": "700000000000000099", "name": "brief", "type": 1,
                 "options": [{"type": 1, "name": subcommand, "options": list(options)}]},
    }


async def invoke(fake: FakeDiscord, payload: dict) -> None:
    """Send the payload over the gateway and wait until the command has answered: its callback,
    and after a deferred callback its follow-up."""
    def answered() -> bool:
        callbacks = [c for c in fake.callbacks if c["interaction_id"] == payload["id"]]
        if not callbacks:
            return False
        return callbacks[0]["payload"]["type"] != DEFERRED or any(
            f["token"] == payload["token"] for f in fake.followups)

    await fake.dispatch("INTERACTION_CREATE", payload)
    await fake.wait_for(answered, timeout=30)


def responses(fake: FakeDiscord, payload: dict) -> tuple[dict, list[dict]]:
    (callback,) = [c for c in fake.callbacks if c["interaction_id"] == payload["id"]]
    followups = [f["payload"] for f in fake.followups if f["token"] == payload["token"]]
    return callback["payload"], followups


# --------------------------------------------------------------------------- options

async def test_latest_topic_with_count_is_ephemeral_embeds(client, fake):
    payload = interaction_payload("latest", option("topic", "rare-earths"), option("count", 2))
    await invoke(fake, payload)
    callback, followups = responses(fake, payload)
    assert callback["type"] == CHANNEL_MESSAGE and followups == []
    data = callback["data"]
    assert data["flags"] == EPHEMERAL
    assert data["allowed_mentions"] == {"parse": []}
    assert data["content"].startswith("Latest 2 briefs") and "Rare earths / 稀土" in data["content"]
    titles = [e["title"] for e in data["embeds"]]
    assert titles == ["Magnet makers stockpile dysprosium", "Gallium export licences slow to a trickle"]
    assert data["embeds"][0]["url"] == "https://news.example.com/rare-earths/3"
    assert "磁材企业囤积镝" in data["embeds"][0]["description"]


async def test_latest_default_count_and_public(client, fake):
    payload = interaction_payload("latest", option("topic", "rare-earths"), option("public", True))
    await invoke(fake, payload)
    data = responses(fake, payload)[0]["data"]
    assert "flags" not in data or not data["flags"] & EPHEMERAL
    assert len(data["embeds"]) == 3  # all three rare-earth briefs (default count 5)
    assert all("tariff" not in e["title"].lower() for e in data["embeds"])


async def test_topic_given_by_chinese_label(client, fake):
    payload = interaction_payload("latest", option("topic", "关税"))
    await invoke(fake, payload)
    data = responses(fake, payload)[0]["data"]
    assert [e["title"] for e in data["embeds"]] == ["US raises tariff on Chinese magnets to 25%"]


async def test_unknown_topic_suggests_and_never_pings(client, fake):
    payload = interaction_payload("latest", option("topic", "rare earth @everyone"), option("public", True))
    await invoke(fake, payload)
    data = responses(fake, payload)[0]["data"]
    # Errors stay private even when `public` was asked for.
    assert data["flags"] == EPHEMERAL
    assert "Unknown topic" in data["content"] and "rare-earths" in data["content"]
    assert "@everyone" in data["content"] and data["allowed_mentions"] == {"parse": []}
    assert "embeds" not in data or data["embeds"] == []


async def test_search_defers_then_follows_up(client, fake):
    payload = interaction_payload("search", option("words", "镓"))
    await invoke(fake, payload)
    callback, followups = responses(fake, payload)
    assert callback["type"] == DEFERRED and callback["data"]["flags"] == EPHEMERAL
    (message,) = followups
    assert message["flags"] == EPHEMERAL and message["allowed_mentions"] == {"parse": []}
    assert "matching “镓”" in message["content"]
    assert [e["title"] for e in message["embeds"]] == ["Gallium export licences slow to a trickle"]


async def test_search_count_and_no_results(client, fake):
    payload = interaction_payload("search", option("words", "magnet"), option("count", 1), option("public", True))
    await invoke(fake, payload)
    callback, followups = responses(fake, payload)
    assert callback["type"] == DEFERRED and not callback.get("data")
    assert len(followups[0]["embeds"]) == 1 and not followups[0].get("flags")

    payload = interaction_payload("search", option("words", "cobalt"))
    await invoke(fake, payload)
    _, followups = responses(fake, payload)
    assert followups[0]["content"].startswith("No briefs match “cobalt”") and "embeds" not in followups[0]


async def test_digest_defers_and_lists_the_window(client, fake):
    payload = interaction_payload("digest")
    await invoke(fake, payload)
    callback, followups = responses(fake, payload)
    assert callback["type"] == DEFERRED and callback["data"]["flags"] == EPHEMERAL
    assert followups and all(f["allowed_mentions"] == {"parse": []} for f in followups)
    embeds = [e for f in followups for e in f["embeds"]]
    header = embeds[0]
    assert "Rare earths: 3 stories" in header["description"] and "稀土：3 条" in header["description"]
    assert "Tariffs: 1 story" in header["description"]
    text = "\n".join(e.get("description", "") for e in embeds[1:])
    for brief in BRIEFS:
        assert brief.primary_url in text and brief.title["zh"] in text


async def test_feeds_health(client, fake):
    payload = interaction_payload("feeds", option("public", True))
    await invoke(fake, payload)
    data = responses(fake, payload)[0]["data"]
    assert responses(fake, payload)[0]["type"] == CHANNEL_MESSAGE and not data.get("flags")
    (embed,) = data["embeds"]
    assert embed["title"].startswith("Feed health")
    lines = embed["description"].splitlines()
    assert lines[0].startswith("⚠️ **customs-cn**") and "3 failures" in lines[0] and "HTTP 503" in lines[0]
    assert lines[1].startswith("✅ **metals-wire**")


async def test_help(client, fake):
    payload = interaction_payload("help")
    await invoke(fake, payload)
    data = responses(fake, payload)[0]["data"]
    assert data["flags"] == EPHEMERAL
    assert "/brief latest" in data["content"] and "`rare-earths` (Rare earths / 稀土)" in data["content"]


async def test_topic_choices_and_command_shape(client):
    (group,) = client.tree.get_commands()
    shape = group.to_dict(client.tree)
    assert shape["name"] == "brief"
    subs = {o["name"]: o for o in shape["options"]}
    assert set(subs) == {"latest", "search", "digest", "feeds", "list", "subscribe", "unsubscribe", "follow",
                         "unfollow", "help"}
    topic, count, public = subs["latest"]["options"]
    assert topic["name"] == "topic" and topic["required"] is True
    assert topic["choices"] == [{"name": "Rare earths / 稀土", "value": "rare-earths"},
                                {"name": "Tariffs / 关税", "value": "tariffs"}]
    assert (count["min_value"], count["max_value"], count["required"]) == (1, 10, False)
    assert public["type"] == 5 and public["required"] is False


async def test_store_failure_answers_privately_without_details(client, fake, app):
    with app.store.engine.begin() as c:
        c.exec_driver_sql("DROP TABLE brief_topics")
    payload = interaction_payload("latest", option("topic", "rare-earths"), option("public", True))
    await invoke(fake, payload)
    data = responses(fake, payload)[0]["data"]
    assert data["flags"] == EPHEMERAL and data["content"].startswith("Sorry, that failed")
    assert "brief_topics" not in data["content"] and "embeds" not in data


async def test_many_topics_use_autocomplete(db_url, fake):
    topics = {f"topic-{i:02d}": {"label": {"en": f"Metal {i}", "zh": f"金属{i}"}, "keywords": [f"metal{i}"]}
              for i in range(30)}
    store = Store(db_url)
    store.create()
    app = App(settings=Settings.model_validate({"topics": topics}),
              env=Env.from_environ({"DISCORD_BOT_TOKEN": fake.bot_token, "DISCORD_API_BASE_URL": fake.origin}),
              store=store)
    try:
        async with gateway_session(app, fake) as bot:
            latest = bot.tree.get_commands()[0].to_dict(bot.tree)["options"][0]
            assert latest["options"][0].get("autocomplete") is True and "choices" not in latest["options"][0]
            assert [c.value for c in topic_suggestions(app.adapter_context(), "金属2")][:2] == ["topic-02", "topic-20"]
            payload = interaction_payload("latest", {**option("topic", "金属1"), "focused": True}, interaction_type=4)
            await invoke(fake, payload)
            callback = fake.callbacks[-1]["payload"]
            assert callback["type"] == 8  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
            values = [c["value"] for c in callback["data"]["choices"]]
            assert values[0] == "topic-01" and "topic-10" in values and len(values) <= 25
    finally:
        store.close()


# --------------------------------------------------------------------------- gateway (briefbot run)

async def test_gateway_session_answers_commands(app, fake):
    runner = await start_discord(app.adapter_context())
    try:
        await asyncio.wait_for(fake.identified.wait(), 10)
        identify = next(f for f in fake.gateway_received if f["op"] == 2)["d"]
        assert identify["token"] == fake.bot_token
        assert identify["intents"] == 1  # GUILDS only: nothing privileged
        payload = interaction_payload("latest", option("topic", "tariffs"))
        await fake.dispatch("INTERACTION_CREATE", payload)
        await fake.wait_for(lambda: any(c["interaction_id"] == payload["id"] for c in fake.callbacks))
        data = responses(fake, payload)[0]["data"]
        assert data["flags"] == EPHEMERAL
        assert [e["title"] for e in data["embeds"]] == ["US raises tariff on Chinese magnets to 25%"]
    finally:
        await runner.stop()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(DISCORD_GATEWAY)
    assert runner.client.is_closed()


# --------------------------------------------------------------------------- sync

async def test_sync_to_guilds(app, fake):
    app.env = Env.from_environ({"DISCORD_BOT_TOKEN": fake.bot_token, "DISCORD_API_BASE_URL": fake.origin,
                                "DISCORD_GUILD_IDS": "700000000000000001, 700000000000000005"})
    synced = await sync_commands(app.adapter_context())
    assert synced == ["/brief → guild 700000000000000001", "/brief → guild 700000000000000005"]
    assert [s["guild_id"] for s in fake.command_syncs] == ["700000000000000001", "700000000000000005"]
    (command,) = fake.command_syncs[0]["commands"]
    assert command["name"] == "brief" and {o["name"] for o in command["options"]} >= {"latest", "digest"}
    puts = [r for r in fake.requests if r.method == "PUT"]
    assert puts[0].path == f"/applications/{APPLICATION_ID}/guilds/700000000000000001/commands"


async def test_sync_globally(app, fake):
    synced = await sync_commands(app.adapter_context())
    assert synced[0].startswith("/brief → global")
    assert fake.command_syncs[0]["guild_id"] is None
    assert fake.requests_to(f"/applications/{APPLICATION_ID}/commands", "PUT")
