"""Discord `/brief` app command: the same answers as Slack's `/brief`, from the shared CommandService.

One application command, `/brief`, with subcommands (Discord does not allow options next to
subcommands, and subcommands keep each option list short and obvious):

    /brief latest topic:<topic> [count:1-10] [public]
    /brief search words:<words> [count:1-10] [public]
    /brief digest [public]
    /brief feeds [public]
    /brief list [public]
    /brief subscribe url:<feed URL> [topics:<topic …>]     (admins)
    /brief unsubscribe feed:<name or URL>                  (admins)
    /brief follow topic:<topic> · /brief unfollow topic:<topic>   (admins)
    /brief help

Replies are ephemeral (flag 64) unless `public` is true. `digest` and `search` defer first
(Discord wants an answer within 3 seconds). Every reply carries `AllowedMentions.none()`.

Commands arrive over the gateway (`start_discord`, used by `briefbot run`); registering them is a
separate REST call (`sync_commands`, `briefbot discord-sync`) to the guilds in DISCORD_GUILD_IDS
(instant) or globally (can take up to an hour to appear).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Optional

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.adapters.discord import SNOWFLAKE
from bot.adapters.discord.env import DiscordEnv
from bot.adapters.discord.deliver import set_api_base
from bot.adapters.discord.render import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    NO_MENTIONS,
    TOPIC_PALETTE,
    pack_embeds,
    render_brief_compact,
    render_digest,
    topic_label,
    trim,
)
from bot.commands import Command, FeedHealth, QueryResult, Verb, help_text
from bot.config import Settings
from bot.delivery.adapter import AdapterContext
from bot.models import Target
from bot.subscriptions import FROM_FILE, Change, FeedStatus, Listing

log = logging.getLogger("briefbot.discord")

DISCORD_GATEWAY = "wss://gateway.discord.gg/"
CHOICES_LIMIT = 25  # Discord allows at most 25 static choices; more topics switch to autocomplete
MAX_COUNT = 10


@dataclass
class Reply:
    """One Discord message of an answer."""

    content: str | None = None
    embeds: list[discord.Embed] | None = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
        if self.content:
            out["content"] = trim(self.content, CONTENT_LIMIT)
        if self.embeds:
            out["embeds"] = self.embeds
        return out


# --------------------------------------------------------------------------- rendering answers

def _usage(verb: Verb) -> str:
    options = {"latest": " topic:<topic> count:<1-10>", "search": " words:<words>",
               "subscribe": " url:<feed URL> topics:<topics>", "unsubscribe": " feed:<name or URL>",
               "follow": " topic:<topic>", "unfollow": " topic:<topic>"}
    return f"/brief {verb.name}{options.get(verb.name, '')}"


def _help(settings: Settings) -> str:
    return help_text(settings, _usage, lambda s: f"**{s}**",
                     "Answers are only visible to you; set `public: True` to share them with the channel.")


def _feed_line(feed: FeedHealth) -> str:
    if feed.disabled_reason:
        icon, state = "⛔", f"disabled: {feed.disabled_reason}"
    elif feed.failures:
        icon, state = "⚠️", f"{feed.status}, {feed.failures} failure{'s' * (feed.failures > 1)}"
    elif feed.last_success:
        icon, state = "✅", feed.status
    else:
        icon, state = "⏳", feed.status
    parts = [f"{icon} **{feed.name}** — {state}", f"{feed.items} items"]
    if feed.held:
        parts.append(f"{feed.held} held back")
    if feed.last_success:
        parts.append(f"last success <t:{int(feed.last_success.timestamp())}:R>")
    if feed.failures and feed.last_error:
        parts.append(f"error: {trim(feed.last_error, 200)}")
    if feed.next_attempt and (feed.failures or feed.disabled_reason):
        parts.append(f"next try <t:{int(feed.next_attempt.timestamp())}:R>")
    return " · ".join(parts)


def _line_embeds(lines: list[str]) -> list[discord.Embed]:
    """Lines packed in order into embeds of at most half a description each (room to spare in
    a message's 6,000-character total)."""
    embeds: list[discord.Embed] = []
    chunk: list[str] = []
    for line in lines:
        if chunk and len("\n".join(chunk)) + 1 + len(line) > DESCRIPTION_LIMIT // 2:
            embeds.append(discord.Embed(description="\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        embeds.append(discord.Embed(description="\n".join(chunk)))
    return embeds


def render_feeds(feeds: list[FeedHealth]) -> list[Reply]:
    if not feeds:
        return [Reply("No feeds have been polled yet. · 尚未轮询任何订阅源。")]
    embeds = _line_embeds([_feed_line(f) for f in feeds])
    embeds[0].title = f"Feed health · 订阅源状态 ({len(feeds)})"
    for embed in embeds:
        embed.colour = discord.Colour(TOPIC_PALETTE[-1])
    return [Reply(embeds=group) for group in pack_embeds(embeds)]


def render_change(change: Change) -> Reply:
    return Reply(f"{'✅' if change.ok else '⚠️'} {change.message}")


def _status_line(feed: FeedStatus) -> str:
    icon = "⛔" if feed.stopped else "⚠️" if feed.failures else "✅" if feed.last_success else "⏳"
    origin = "from feeds.yaml" if feed.origin == FROM_FILE else f"added by {feed.created_by}"
    parts = [f"{icon} **{feed.name}** — {feed.status}", f"{feed.items} items", f"*{origin}*"]
    if feed.last_success:
        parts.append(f"last success <t:{int(feed.last_success.timestamp())}:R>")
    if feed.problem:
        parts.append(f"error: {trim(feed.problem, 200)}")
    return " · ".join(parts)


def render_listing(listing: Listing) -> list[Reply]:
    if listing.follows:
        lines = [f"• **{f.topic}** — " + (f"route {f.source} in feeds.yaml" if f.origin == FROM_FILE
                                          else f"followed by {f.source}") for f in listing.follows]
        header = "**This channel follows** · 本频道关注\n" + "\n".join(lines)
    else:
        header = "This channel follows no topic yet · 本频道尚未关注任何主题. Try `/brief follow`."
    embeds = _line_embeds([_status_line(f) for f in listing.feeds])
    if embeds:
        embeds[0].title = f"Feeds behind them · 订阅源 ({len(listing.feeds)})"
    groups = pack_embeds(embeds) or [[]]
    return [Reply(trim(header, CONTENT_LIMIT) if i == 0 else None, group or None) for i, group in enumerate(groups)]


def _list_replies(header: str, result: QueryResult, context: AdapterContext) -> list[Reply]:
    embeds = [render_brief_compact(b, context.settings()) for b in result.briefs]
    messages = pack_embeds(embeds)
    return [Reply(header if i == 0 else None, group) for i, group in enumerate(messages)]


def render_result(result: QueryResult, context: AdapterContext) -> list[Reply]:
    """A QueryResult as Discord messages, in order (the first answers the interaction)."""
    command = result.command
    if result.change is not None:
        return [render_change(result.change)]
    if result.listing is not None:
        return render_listing(result.listing)
    if command.action == "unknown-topic":
        return [Reply(command.error or "Unknown topic.")]
    if command.action == "help":
        text = _help(context.settings())
        return [Reply(f"{command.error}\n\n{text}" if command.error else text)]
    if command.action == "latest":
        label = topic_label(command.topic or "", context.settings())
        if not result.briefs:
            return [Reply(f"No briefs yet for {label}. · 该主题暂无简报。")]
        n = len(result.briefs)
        return _list_replies(f"Latest {n} brief{'s' * (n > 1)} · 最新{n}条 — {label}", result, context)
    if command.action == "search":
        words = " ".join(command.words)
        if not result.briefs:
            return [Reply(f"No briefs match “{words}”. · 没有匹配“{words}”的简报。")]
        n = len(result.briefs)
        return _list_replies(f"{n} brief{'s' * (n > 1)} matching “{words}” · 搜索结果", result, context)
    if command.action == "digest" and result.digest is not None:
        return [Reply(embeds=group) for group in render_digest(result.digest, context.settings())]
    if command.action == "feeds":
        return render_feeds(result.feeds)
    return [Reply("Nothing to show. · 无内容。")]


# --------------------------------------------------------------------------- answering an interaction

def discord_admin_roles(settings: Settings) -> list[str]:
    """The role IDs of the `admins` setting's `discord:` entries."""
    return [entry[8:] for entry in settings.admins if entry.startswith("discord:") and SNOWFLAKE.fullmatch(entry[8:])]


def admin_refusal(interaction: discord.Interaction, settings: Settings) -> str | None:
    """None when the member may subscribe, unsubscribe, follow and unfollow; else why not and who may.

    With `admins` set, members holding one of its roles; without it, members with Manage Channels in
    this channel (the permissions Discord sends with the interaction)."""
    roles = discord_admin_roles(settings)
    member = interaction.user
    if roles:
        held = {str(role.id) for role in getattr(member, "roles", [])}
        if held & set(roles):
            return None
        who = ", ".join(f"<@&{role}>" for role in roles)
        return (f"Only members with the role {who} can change subscriptions and follows here (`admins` in "
                "feeds.yaml). Everyone can use `/brief list`. · 仅指定角色可更改订阅。")
    if interaction.permissions.manage_channels:
        return None
    return ("Only members with the Manage Channels permission can change subscriptions and follows here; an "
            "operator can name roles in feeds.yaml (`admins`). Everyone can use `/brief list`. · 仅频道管理员可更改订阅。")


async def answer_interaction(context: AdapterContext, interaction: discord.Interaction, text: str, *,
                             count: int | None = None, defer: bool = False) -> Command:
    """Parse `text` like Slack's `/brief` would, answer it, and reply to the interaction."""
    queries = context.commands()
    command = queries.parse_command(text)
    if count is not None and command.action in ("latest", "search"):
        command.count = max(1, min(MAX_COUNT, count))
    if command.changes:
        refusal = admin_refusal(interaction, context.settings())
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return command
    ephemeral = not command.public
    if defer:
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)
    try:
        # Direct messages have a channel too; an interaction without one has no place to post to.
        target = Target("discord", str(interaction.channel_id)) if interaction.channel_id else None
        result = await queries.answer_for(command, target, f"discord:{interaction.user.id}")
        replies = render_result(result, context)
    except Exception:
        log.exception("/brief %r failed", text)
        replies = [Reply("Sorry, that failed on our side; it has been logged. · 出错了，已记录。")]
        # A failure is nobody else's business (unless a public defer already showed "thinking…").
        ephemeral = True
    for i, reply in enumerate(replies):
        if i == 0 and not interaction.response.is_done():
            await interaction.response.send_message(ephemeral=ephemeral, **reply.kwargs())
        else:
            await interaction.followup.send(ephemeral=ephemeral, wait=True, **reply.kwargs())
    return command


def _text(*words: Any, public: bool) -> str:
    parts = [str(w).strip() for w in words if w is not None and str(w).strip()]
    if public:
        parts.append("public")
    return " ".join(parts)


# --------------------------------------------------------------------------- client and command tree

class BriefbotTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.error("Discord command %s failed: %s", interaction.command and interaction.command.qualified_name,
                  error, exc_info=error)
        message = "Sorry, that command failed; it has been logged. · 命令出错，已记录。"
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(message, ephemeral=True, allowed_mentions=NO_MENTIONS)


class BriefbotClient(discord.Client):
    """A discord.Client carrying the app and its `/brief` command tree."""

    def __init__(self, context: AdapterContext, **kwargs: Any):
        # Only the non-privileged `guilds` intent (discord.py's state handling expects it); slash
        # commands arrive as interactions whatever the intents, and we never read messages.
        super().__init__(intents=discord.Intents(guilds=True), allowed_mentions=NO_MENTIONS,
                         max_ratelimit_timeout=60.0, **kwargs)
        self.context = context
        self.tree = BriefbotTree(self)
        self.tree.add_command(build_brief_group(context))

    async def on_ready(self) -> None:
        log.info("Discord gateway connected as %s", self.user)


def build_brief_group(context: AdapterContext) -> app_commands.Group:
    group = app_commands.Group(name="brief", description="Bilingual rare-earth and tariff briefs · 稀土与关税双语简报")
    _add_reading_commands(group, context)
    _add_changing_commands(group, context)

    @group.command(name="help", description="How to use /brief · 使用说明")
    async def help_(interaction: discord.Interaction) -> None:
        await answer_interaction(context, interaction, "help")

    return group


def _add_reading_commands(group: app_commands.Group, context: AdapterContext) -> None:
    """The subcommands everyone may use."""
    settings = context.settings()

    @group.command(name="latest", description="Latest briefs for a topic · 某主题的最新简报")
    @app_commands.describe(topic="Topic · 主题", count="How many, 1-10 (default 5) · 条数",
                           public="Show the answer to the channel · 公开显示")
    async def latest(interaction: discord.Interaction, topic: str,
                     count: Optional[app_commands.Range[int, 1, 10]] = None, public: bool = False) -> None:
        await answer_interaction(context, interaction, _text(topic, public=public), count=count)

    if len(settings.topics) <= CHOICES_LIMIT:
        choices = [app_commands.Choice(name=trim(topic_label(name, settings), 100), value=name)
                   for name in settings.topics]
        app_commands.choices(topic=choices)(latest)
    else:
        @latest.autocomplete("topic")
        async def topic_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return topic_suggestions(context, current)

    @group.command(name="search", description="Briefs matching words, English or Chinese · 搜索简报")
    @app_commands.describe(words="Words to find, e.g. gallium or 镓 · 关键词", count="How many, 1-10 · 条数",
                           public="Show the answer to the channel · 公开显示")
    async def search(interaction: discord.Interaction, words: app_commands.Range[str, 1, 200],
                     count: Optional[app_commands.Range[int, 1, 10]] = None, public: bool = False) -> None:
        await answer_interaction(context, interaction, _text("search", words, public=public), count=count, defer=True)

    @group.command(name="digest", description="The digest of the last 24 hours, now · 过去24小时摘要")
    @app_commands.describe(public="Show the answer to the channel · 公开显示")
    async def digest(interaction: discord.Interaction, public: bool = False) -> None:
        await answer_interaction(context, interaction, _text("digest", public=public), defer=True)

    @group.command(name="feeds", description="Feed health · 订阅源状态")
    @app_commands.describe(public="Show the answer to the channel · 公开显示")
    async def feeds(interaction: discord.Interaction, public: bool = False) -> None:
        await answer_interaction(context, interaction, _text("feeds", public=public))

    @group.command(name="list", description="This channel's follows and the feeds behind them · 本频道的关注与订阅源")
    @app_commands.describe(public="Show the answer to the channel · 公开显示")
    async def list_(interaction: discord.Interaction, public: bool = False) -> None:
        await answer_interaction(context, interaction, _text("list", public=public))


def _add_changing_commands(group: app_commands.Group, context: AdapterContext) -> None:
    """The subcommands that change subscriptions and follows (admins only; the answer says who may)."""

    @group.command(name="subscribe", description="Add a feed; its matching items are posted here (admins) · 添加订阅源")
    @app_commands.describe(url="The feed's URL (RSS, Atom or JSON Feed) · 订阅源网址",
                           topics="Topics, separated by spaces (default: all) · 主题")
    async def subscribe(interaction: discord.Interaction, url: app_commands.Range[str, 1, 2048],
                        topics: Optional[app_commands.Range[str, 1, 200]] = None) -> None:
        # Reading the feed once may take longer than the 3 seconds Discord waits for an answer.
        await answer_interaction(context, interaction, _text("subscribe", url, topics, public=False), defer=True)

    @group.command(name="unsubscribe", description="Remove a feed added from chat (admins) · 移除订阅源")
    @app_commands.describe(feed="The feed's name or URL · 订阅源名称或网址")
    async def unsubscribe(interaction: discord.Interaction, feed: app_commands.Range[str, 1, 2048]) -> None:
        await answer_interaction(context, interaction, _text("unsubscribe", feed, public=False))

    @group.command(name="follow", description="Post a topic's briefs in this channel (admins) · 关注主题")
    @app_commands.describe(topic="Topic · 主题")
    async def follow(interaction: discord.Interaction, topic: app_commands.Range[str, 1, 100]) -> None:
        await answer_interaction(context, interaction, _text("follow", topic, public=False))

    @group.command(name="unfollow", description="Stop posting a topic's briefs here (admins) · 取消关注主题")
    @app_commands.describe(topic="Topic · 主题")
    async def unfollow(interaction: discord.Interaction, topic: app_commands.Range[str, 1, 100]) -> None:
        await answer_interaction(context, interaction, _text("unfollow", topic, public=False))


def topic_suggestions(context: AdapterContext, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: topics whose name or any label contains what was typed (used above 25 topics)."""
    wanted = current.strip().lower()
    out = []
    for name in context.settings().topics:
        label = topic_label(name, context.settings())
        if not wanted or wanted in name.lower() or wanted in label.lower():
            out.append(app_commands.Choice(name=trim(label, 100), value=name))
    return out[:CHOICES_LIMIT]


def build_discord_client(context: AdapterContext) -> BriefbotClient:
    """The client with its CommandTree and `/brief`; not logged in, not connected."""
    set_api_base(DiscordEnv.from_env(context.env).api_base_url)
    return BriefbotClient(context)


# --------------------------------------------------------------------------- gateway and sync

class DiscordRunner:
    """A running gateway connection (`briefbot run`); `stop()` closes it."""

    def __init__(self, client: BriefbotClient, task: asyncio.Task):
        self.client = client
        self.task = task

    async def stop(self) -> None:
        await self.client.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


def _require_token(context: AdapterContext) -> str:
    token = DiscordEnv.from_env(context.env).bot_token
    if not token:
        raise RuntimeError("DISCORD_BOT_TOKEN is not set: the /brief command needs the bot's token "
                           "(see docs/discord.md)")
    return token


async def start_discord(context: AdapterContext, *, sync: bool = False) -> DiscordRunner:
    """Log in over REST (fails fast on a bad token), then keep a gateway connection for commands."""
    token = _require_token(context)
    client = build_discord_client(context)
    try:
        await client.login(token)
        if DiscordEnv.from_env(context.env).api_base_url:
            # discord.py connects to a fixed wss://gateway.discord.gg; behind another API base
            # (a proxy, the test fake) ask that base where its gateway is, as sharded clients do.
            _shards, url, _limits = await client.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        else:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(DISCORD_GATEWAY)
        if sync:
            await _sync(client, context)
    except BaseException:
        await client.close()
        raise

    async def connect() -> None:
        try:
            await client.connect(reconnect=True)
        except Exception:
            log.exception("Discord gateway connection ended; /brief commands are unavailable")

    return DiscordRunner(client, asyncio.create_task(connect(), name="discord-gateway"))


async def _sync(client: BriefbotClient, context: AdapterContext) -> list[str]:
    synced: list[str] = []
    guild_ids = DiscordEnv.from_env(context.env).guild_ids
    if guild_ids:
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)
            client.tree.copy_global_to(guild=guild)
            commands = await client.tree.sync(guild=guild)
            synced += [f"/{c.name} → guild {guild_id}" for c in commands]
    else:
        commands = await client.tree.sync()
        synced += [f"/{c.name} → global (may take up to an hour to appear)" for c in commands]
    return synced


async def sync_commands(context: AdapterContext) -> list[str]:
    """Register `/brief` with Discord over REST only, to DISCORD_GUILD_IDS or globally."""
    token = _require_token(context)
    client = build_discord_client(context)
    try:
        await client.login(token)  # also fetches the application id that the sync URL needs
        return await _sync(client, context)
    finally:
        await client.close()
