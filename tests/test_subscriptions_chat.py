"""`/brief subscribe|unsubscribe|follow|unfollow|list` from Slack (signed slash commands to Bolt's
real HTTP endpoint) and Discord (INTERACTION_CREATE over the gateway to discord.py's CommandTree),
with the admin checks asking the fake Slack (users.info, usergroups.users.list) and reading the
roles and permissions Discord sends with each interaction; and the same verbs from the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import aiohttp
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from feedgen import TOPICS, Entry, poll_and_deliver, rss
from loopback import Reply

from bot.adapters.discord.commands import DISCORD_GATEWAY, start_discord
from bot.adapters.discord.deliver import set_api_base
from bot.adapters.slack.commands import start_slack
from bot.app.container import App, build_app, close_app
from bot.cli import main
from bot.config import Env, Settings
from bot.store import Store
from fakes.discord_api import APPLICATION_ID, MANAGE_CHANNELS, SEND_MESSAGES, VIEW_CHANNEL, FakeDiscord
from fakes.slack_api import BOT_TOKEN, Channel, FakeSlack

SIGNING_SECRET = "5c0b1f2e3d4a5968778695a4b3c2d1e0"
CHANNEL = "C0BRIEFS1"
WIRE = [Entry("US raises tariffs on steel imports", "Tariffs rise to 25% on steel.", guid="t1"),
        Entry("New tariff schedule for cars", "A tariff of 10% applies to cars.", guid="t2"),
        Entry("Tariff truce extended", "The trade war truce holds; tariffs paused.", guid="t3"),
        Entry("Gallium prices climb", "Gallium up 5% on export limits.", guid="g1"),
        Entry("Local bakery opens", "Bread and cakes.", guid="b1")]


def settings_with(tmp_path, **extra) -> Settings:
    settings = Settings.model_validate({
        "topics": TOPICS, "feeds": [{"name": "baseline", "url": "https://example.com/rss.xml", "topics": ["tariff"]}],
        "routes": [{"name": "desk", "topics": ["tariff"], "to": ["jsonl:out/desk.jsonl"]}], **extra})
    settings.source_path = tmp_path / "feeds.yaml"
    return settings


@pytest.fixture
def wire(http_server) -> str:
    return http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))


@pytest.fixture
def store(db_url):
    store = Store(db_url)
    store.create()
    yield store
    store.close()


# --------------------------------------------------------------------------- Slack

@pytest.fixture
def slack():
    with FakeSlack(channels={CHANNEL: Channel()}) as fake:
        fake.add_user("U0MEMBER")
        fake.add_user("U0ADMIN", is_admin=True)
        fake.add_user("U0OWNER", is_owner=True)
        yield fake


def slack_env(slack: FakeSlack, db_url: str, **extra) -> Env:
    return Env.from_environ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                             "SLACK_API_BASE_URL": slack.api_url.rstrip("/"), "PORT": "0", "DATABASE_URL": db_url,
                             "BRIEFBOT_ALLOW_PRIVATE_URLS": "1", "BRIEFBOT_PARSE_WORKERS": "0", **extra})


@asynccontextmanager
async def slack_bot(slack: FakeSlack, store: Store, settings: Settings, db_url: str, **env):
    app = App(settings=settings, env=slack_env(slack, db_url, **env), store=store)
    runner = await start_slack(app.adapter_context(), host="127.0.0.1")
    try:
        yield runner
    finally:
        await runner.stop()


async def slash(slack: FakeSlack, runner, text: str, user: str) -> str:
    """Send `/brief text` as `user` in CHANNEL, signed as Slack signs it; the answer's text."""
    name = f"r{len(slack.responses)}-{user}"
    body = urlencode({"token": "x", "team_id": "T0TEST001", "channel_id": CHANNEL, "channel_name": "trade",
                      "user_id": user, "user_name": user.lower(), "command": "/brief", "text": text,
                      "api_app_id": "A0TEST001", "response_url": slack.response_url(name), "trigger_id": "1.2.3"})
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": signature}
    before = len(slack.responses)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{runner.port}/slack/events", data=body, headers=headers) as resp:
            assert resp.status == 200
    await slack.async_wait_for_responses(before + 1)
    (answer,) = [r for r in slack.responses if r["_path"] == f"/response/{name}"]
    assert answer["response_type"] == "ephemeral"
    return "\n".join([answer.get("text", "")] + [b["text"]["text"] for b in answer.get("blocks", []) if "text" in b])


async def test_slack_subscribe_by_a_workspace_admin_posts_matching_items_to_the_channel(slack, store, tmp_path,
                                                                                         db_url, wire, http_server):
    settings = settings_with(tmp_path)
    async with slack_bot(slack, store, settings, db_url) as runner:
        refused = await slash(slack, runner, f"subscribe {wire} tariff", "U0MEMBER")
        assert "Only workspace admins and owners can change subscriptions" in refused
        assert "`/brief list`" in refused
        assert store.subscriptions() == [] and http_server.requests_to("/wire.xml") == []
        assert [c.params["user"] for c in slack.calls_to("users.info")] == ["U0MEMBER"]

        # Slack sends a pasted link as <url>, with its `&` as an entity.
        accepted = await slash(slack, runner, f"subscribe <{wire}?edition=en&amp;region=asia> tariff", "U0ADMIN")
        assert "5 items, 3 match *tariff*; new matching items will be posted here" in accepted
        assert "region=asia" not in accepted  # a URL's query may hold a key: never repeated
    [row] = store.subscriptions()
    assert (row.url, row.target, row.created_by) == (f"{wire}?edition=en&region=asia", f"slack:{CHANNEL}",
                                                     "slack:U0ADMIN")

    app = build_app(settings, slack_env(slack, db_url), store=store)
    try:
        await poll_and_deliver(app)
    finally:
        await close_app(app)
    posted = [m["text"] for m in slack.posted(CHANNEL)]
    assert len(posted) == 3 and all("ariff" in text for text in posted)


async def test_slack_follow_list_unfollow(slack, store, tmp_path, db_url):
    settings = settings_with(tmp_path)
    async with slack_bot(slack, store, settings, db_url) as runner:
        empty = await slash(slack, runner, "list", "U0MEMBER")
        assert "follows no topic yet" in empty
        assert "Only" in await slash(slack, runner, "follow rare-earth", "U0MEMBER")
        assert "Following rare-earth: its new briefs will be posted here." in await slash(
            slack, runner, "follow Rare earths", "U0OWNER")
        listed = await slash(slack, runner, "list", "U0MEMBER")
        assert "*rare-earth* — followed by slack:U0OWNER" in listed
        assert "unfollow" not in listed and "tariff" not in listed  # the desk route is another target's
        assert "Unfollowed rare-earth" in await slash(slack, runner, "unfollow rare-earth", "U0ADMIN")
        assert "does not follow rare-earth" in await slash(slack, runner, "unfollow rare-earth", "U0ADMIN")
        assert "Unknown topic weather" in await slash(slack, runner, "follow weather", "U0ADMIN")
    assert store.follows() == []


async def test_slack_admins_setting_names_users_and_user_groups(slack, store, tmp_path, db_url):
    slack.add_user("U0LEAD")
    slack.usergroups["S0TRADE"] = ["U0LEAD"]
    settings = settings_with(tmp_path, admins=["slack:U0MEMBER", "slack:S0TRADE", "discord:112233445566778899"])
    async with slack_bot(slack, store, settings, db_url) as runner:
        refused = await slash(slack, runner, "follow tariff", "U0ADMIN")  # a workspace admin, not named
        assert "Only <@U0MEMBER>, members of <!subteam^S0TRADE> can change subscriptions" in refused
        assert "Following tariff" in await slash(slack, runner, "follow tariff", "U0LEAD")
        assert "already follows tariff" in await slash(slack, runner, "follow tariff", "U0MEMBER")
    assert [c.params["usergroup"] for c in slack.calls_to("usergroups.users.list")] == ["S0TRADE", "S0TRADE"]
    assert slack.calls_to("users.info") == []


async def test_slack_admin_check_without_its_scope_says_which_scope(slack, store, tmp_path, db_url):
    slack.scopes.discard("users:read")
    async with slack_bot(slack, store, settings_with(tmp_path), db_url) as runner:
        answer = await slash(slack, runner, "follow tariff", "U0ADMIN")
    assert "could not check who may change subscriptions" in answer and "`users:read` scope" in answer
    assert store.follows() == []


async def test_slack_subscribe_refused_by_the_ssrf_guard_and_for_a_page(slack, store, tmp_path, db_url, wire,
                                                                       http_server):
    page = http_server.route("/page", Reply(body=b"<html><body>tariff news</body></html>", content_type="text/html"))
    async with slack_bot(slack, store, settings_with(tmp_path), db_url, BRIEFBOT_ALLOW_PRIVATE_URLS="0") as runner:
        blocked = await slash(slack, runner, f"subscribe {wire}", "U0ADMIN")
    assert "private or local network address" in blocked
    async with slack_bot(slack, store, settings_with(tmp_path), db_url) as runner:
        not_feed = await slash(slack, runner, f"subscribe {page}", "U0ADMIN")
        from_file = await slash(slack, runner, "unsubscribe baseline", "U0ADMIN")
    assert "is not a feed" in not_feed and "HTML page" in not_feed
    assert "baseline is from feeds.yaml; an operator removes it there." in from_file
    assert store.subscriptions() == [] and http_server.requests_to("/wire.xml") == []


# --------------------------------------------------------------------------- Discord

GUILD = "700000000000000001"
DISCORD_CHANNEL = "700000000000000002"
MODERATOR_ROLE = "700000000000000010"
TRADE_ROLE = "700000000000000011"
_interaction_ids = iter(range(1_400_000_000_000_000_001, 1_500_000_000_000_000_000))


@pytest.fixture
async def discord_fake():
    server = await FakeDiscord().start()
    yield server
    await server.stop()
    set_api_base(None)


@asynccontextmanager
async def discord_bot(fake: FakeDiscord, store: Store, settings: Settings, db_url: str):
    env = Env.from_environ({"DISCORD_BOT_TOKEN": fake.bot_token, "DISCORD_API_BASE_URL": fake.origin,
                            "DATABASE_URL": db_url, "BRIEFBOT_ALLOW_PRIVATE_URLS": "1"})
    runner = await start_discord(App(settings=settings, env=env, store=store).adapter_context())
    try:
        await asyncio.wait_for(fake.identified.wait(), 30)
        everyone = VIEW_CHANNEL | SEND_MESSAGES
        await fake.create_guild(GUILD, {GUILD: everyone, MODERATOR_ROLE: MANAGE_CHANNELS, TRADE_ROLE: 0})
        yield runner.client
    finally:
        await runner.stop()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(DISCORD_GATEWAY)


async def interact(fake: FakeDiscord, subcommand: str, user: str, roles: list[str], **options) -> str:
    """`/brief subcommand option:value…` from `user` holding `roles`; the answer's text."""
    interaction_id = str(next(_interaction_ids))
    member = fake.member(GUILD, user, roles)
    payload = {"id": interaction_id, "application_id": APPLICATION_ID, "type": 2, "token": f"itoken-{interaction_id}",
               "version": 1, "guild_id": GUILD, "channel_id": DISCORD_CHANNEL, "member": member,
               "channel": {"id": DISCORD_CHANNEL, "type": 0, "guild_id": GUILD, "name": "trade", "position": 0,
                           "permissions": member["permissions"], "nsfw": False, "parent_id": None},
               "app_permissions": member["permissions"], "locale": "en-US", "guild_locale": "en-US",
               "entitlements": [], "authorizing_integration_owners": {"0": GUILD}, "context": 0,
               "attachment_size_limit": 10485760,
               "data": {"id": "700000000000000099", "name": "brief", "type": 1, "options": [
                   {"type": 1, "name": subcommand,
                    "options": [{"type": 3, "name": k, "value": v} for k, v in options.items()]}]}}

    def answered() -> bool:
        callbacks = [c for c in fake.callbacks if c["interaction_id"] == interaction_id]
        return bool(callbacks) and (callbacks[0]["payload"]["type"] != 5 or any(
            f["token"] == payload["token"] for f in fake.followups))

    await fake.dispatch("INTERACTION_CREATE", payload)
    await fake.wait_for(answered, timeout=30)
    (callback,) = [c["payload"] for c in fake.callbacks if c["interaction_id"] == interaction_id]
    parts = [callback.get("data") or {}] + [f["payload"] for f in fake.followups if f["token"] == payload["token"]]
    for part in parts[1:] if callback["type"] == 5 else parts:
        assert part.get("flags", 0) & 64, "changes and lists answer privately"
    texts = [p.get("content") or "" for p in parts]
    texts += [e.get("description") or "" for p in parts for e in p.get("embeds") or []]
    return "\n".join(texts)


async def test_discord_subscribe_needs_manage_channels(discord_fake, store, tmp_path, db_url, wire, http_server):
    async with discord_bot(discord_fake, store, settings_with(tmp_path), db_url):
        refused = await interact(discord_fake, "subscribe", "700000000000000003", [], url=wire, topics="tariff")
        assert "Only members with the Manage Channels permission" in refused
        assert http_server.requests_to("/wire.xml") == []
        accepted = await interact(discord_fake, "subscribe", "700000000000000004", [MODERATOR_ROLE], url=wire,
                                  topics="tariff")
        assert "5 items, 3 match *tariff*; new matching items will be posted here" in accepted
    [row] = store.subscriptions()
    assert (row.target, row.created_by, row.topics) == (
        f"discord:{DISCORD_CHANNEL}", "discord:700000000000000004", ("tariff",))
    assert [(f.topic, f.target) for f in store.follows()] == [("tariff", f"discord:{DISCORD_CHANNEL}")]


async def test_discord_follow_list_unfollow_with_admin_roles(discord_fake, store, tmp_path, db_url):
    settings = settings_with(tmp_path, admins=[f"discord:{TRADE_ROLE}", "slack:U0MEMBER"])
    async with discord_bot(discord_fake, store, settings, db_url):
        moderator = await interact(discord_fake, "follow", "700000000000000004", [MODERATOR_ROLE], topic="tariff")
        assert f"Only members with the role <@&{TRADE_ROLE}> can change subscriptions" in moderator
        followed = await interact(discord_fake, "follow", "700000000000000005", [TRADE_ROLE], topic="关税")
        assert "Following tariff: its new briefs will be posted here." in followed
        listed = await interact(discord_fake, "list", "700000000000000003", [])
        assert "**tariff** — followed by discord:700000000000000005" in listed
        assert "**baseline** — never polled" in listed and "from feeds.yaml" in listed
        unfollowed = await interact(discord_fake, "unfollow", "700000000000000005", [TRADE_ROLE], topic="tariff")
        assert "Unfollowed tariff" in unfollowed
        assert "follows no topic yet" in await interact(discord_fake, "list", "700000000000000003", [])
    assert store.follows() == []


# --------------------------------------------------------------------------- CLI

def test_cli_subscribe_follow_list_unfollow_unsubscribe(tmp_path, db_url, wire, monkeypatch, capsys):
    config = tmp_path / "feeds.yaml"
    config.write_text(json.dumps({"topics": TOPICS, "feeds": [{"name": "baseline", "url": "https://example.com/rss.xml"}],
                                  "routes": [{"name": "desk", "to": ["jsonl:out/desk.jsonl"]}]}), encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("BRIEFBOT_PARSE_WORKERS", "0")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("subscribe", wire, "tariff", "--to", "slack:C0TRADE01")
    assert code == 0 and "5 items, 3 match *tariff*" in out
    code, _, err = run("subscribe", wire + "x", "tariff")
    assert code == 2 and "--to TARGET is required" in err
    code, _, err = run("follow", "weather", "--to", "slack:C0TRADE01")
    assert code == 2 and "Unknown topic weather" in err
    code, _, err = run("follow", "tariff", "--to", "#general")
    assert code == 2 and "--to:" in err
    code, out, _ = run("follow", "Rare", "earths", "--to", "slack:C0TRADE01")
    assert code == 0 and "Following rare-earth" in out

    code, out, _ = run("follows", "--to", "slack:C0TRADE01", "--json")
    listing = json.loads(out)
    assert code == 0 and listing["target"] == "slack:C0TRADE01"
    assert sorted((f["topic"], f["origin"]) for f in listing["follows"]) == [("rare-earth", "chat"), ("tariff", "chat")]
    assert {(f["name"], f["origin"]) for f in listing["feeds"]} == {("baseline", "feeds.yaml"),
                                                                    ("127.0.0.1-wire.xml", "chat")}
    code, out, _ = run("feeds", "--json")
    assert {(d["name"], d["origin"]) for d in map(json.loads, out.splitlines())} == {
        ("baseline", "feeds.yaml"), ("127.0.0.1-wire.xml", "chat")}

    code, _, err = run("unsubscribe", "baseline")
    assert code == 1 and "from feeds.yaml" in err
    assert run("unfollow", "tariff", "--to", "slack:C0TRADE01")[0] == 0
    code, out, _ = run("unsubscribe", "127.0.0.1-wire.xml")
    assert code == 0 and "Unsubscribed from 127.0.0.1-wire.xml" in out
    code, out, _ = run("feeds", "--json")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["baseline"]
    code, out, _ = run("follows")
    assert code == 0 and "rare-earth" in out and "followed by cli:" in out
