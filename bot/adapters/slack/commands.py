"""The Slack app: `/brief` over Bolt, in Socket Mode (SLACK_APP_TOKEN) or HTTP mode (SLACK_SIGNING_SECRET).

Slack wants a slash command acknowledged within 3 seconds. The ack listener only acknowledges;
the query (store reads, maybe a digest build) runs in a lazy listener and answers through the
command's `response_url`, ephemeral unless the user added `public`.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.adapters.slack.deliver import make_web_client
from bot.adapters.slack.render import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    context_block,
    escape,
    fit,
    format_time,
    render_brief_compact,
    render_digest,
    section_block,
)
from bot.adapters.slack import GROUP_ID, USER_ID
from bot.adapters.slack.env import SlackEnv
from bot.commands import Command, FeedHealth, QueryResult, Verb, help_text
from bot.delivery.adapter import AdapterContext
from bot.models import Target
from bot.subscriptions import FROM_FILE, Change, FeedStatus, Listing

log = logging.getLogger("briefbot.slack")

EVENTS_PATH = "/slack/events"
DEFAULT_PORT = 3000


# --------------------------------------------------------------------------- rendering of answers

def _usage(verb: Verb) -> str:
    return f"/brief {verb.name if verb.name != 'latest' else ''} {verb.args}".replace("  ", " ").strip()


def render_help(result: QueryResult, settings: Settings) -> tuple[str, list[dict]]:
    # Topic labels come from config: escaped like any other text.
    text = escape(help_text(settings, _usage, lambda s: f"*{s}*",
                            "Add `public` at the end to share the answer with the channel."))
    blocks = []
    if result.command.error:
        blocks.append(section_block(f":warning: {escape(result.command.error)}"))
    blocks.append(section_block(text))
    fallback = (result.command.error + " " if result.command.error else "") + "briefbot help: /brief <topic> [N]"
    return escape(fallback), blocks


def render_unknown_topic(command: Command) -> tuple[str, list[dict]]:
    message = command.error or f"Unknown topic '{command.topic}'."
    return escape(message), [section_block(f":grey_question: {escape(message)}\nTry `/brief help`.")]


def _brief_list(title: str, briefs: list, settings: Settings, tz: str, empty: str) -> tuple[str, list[dict]]:
    blocks: list[dict] = [section_block(title)]
    if not briefs:
        blocks.append(section_block(empty))
        return f"{title}: {empty}", blocks
    for brief in briefs:
        compact = render_brief_compact(brief, settings, tz)
        if len(blocks) + len(compact) > MAX_BLOCKS - 1:
            blocks.append(context_block([f"{len(briefs)} results; not all shown"]))
            break
        blocks.extend(compact)
    first = briefs[0].title.get("en") or briefs[0].title.get("zh") or ""
    return fit(escape(f"{len(briefs)} briefs — latest: {first}"), 3000), blocks


def _feed_line(feed: FeedHealth, tz: str) -> str:
    icon = ":white_check_mark:" if feed.failures == 0 and not feed.disabled_reason else ":warning:"
    parts = [f"{icon} *{escape(feed.name)}* — {escape(feed.status)}",
             f"last fetch {format_time(feed.last_fetch, tz) if feed.last_fetch else 'never'}",
             f"last success {format_time(feed.last_success, tz) if feed.last_success else 'never'}",
             f"failures {feed.failures}", f"items {feed.items}"]
    if feed.held:
        parts.append(f"held back {feed.held}")
    if feed.next_attempt:
        parts.append(f"next {format_time(feed.next_attempt, tz)}")
    line = " · ".join(parts)
    problem = feed.disabled_reason or feed.last_error
    if problem:
        line += f"\n    _{escape(problem)[:300]}_"
    return line


def _line_sections(lines: list[str]) -> list[dict]:
    """Lines packed in order into section blocks, each under Slack's 3,000-character limit."""
    blocks: list[dict] = []
    chunk: list[str] = []
    for line in lines:
        if chunk and len("\n".join(chunk + [line])) > 2900:
            blocks.append(section_block("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section_block("\n".join(chunk)))
    return blocks


def render_feeds(feeds: list[FeedHealth], tz: str) -> tuple[str, list[dict]]:
    if not feeds:
        return "No feeds polled yet.", [section_block("No feeds polled yet. Run `briefbot poll --once` or wait for the scheduler.")]
    failing = sum(1 for f in feeds if f.failures or f.disabled_reason)
    blocks = [section_block(f"*Feed health* — {len(feeds)} feeds, {failing} with problems"),
              *_line_sections([_feed_line(f, tz) for f in feeds])]
    return f"Feed health: {len(feeds)} feeds, {failing} with problems", blocks[:MAX_BLOCKS]


def render_change(change: Change) -> tuple[str, list[dict]]:
    # The service's messages carry names, topics and hidden URLs; `*topic*` is meant as bold.
    icon = ":white_check_mark:" if change.ok else ":warning:"
    return escape(change.message), [section_block(f"{icon} {escape(change.message)}")]


def _status_line(feed: FeedStatus, tz: str) -> str:
    healthy = feed.failures == 0 and not feed.stopped
    origin = "from feeds.yaml" if feed.origin == FROM_FILE else f"added by {feed.created_by}"
    line = (f"{':white_check_mark:' if healthy else ':warning:'} *{escape(feed.name)}* — {escape(feed.status)} · "
            f"{feed.items} items · last success "
            f"{format_time(feed.last_success, tz) if feed.last_success else 'never'} · _{escape(origin)}_")
    if feed.failures:
        line += f" · failures {feed.failures}"
    if feed.problem:
        line += f"\n    _{escape(feed.problem)[:300]}_"
    return line


def render_listing(listing: Listing, tz: str) -> tuple[str, list[dict]]:
    if listing.follows:
        lines = [f"• *{escape(f.topic)}* — " + (f"route {escape(f.source)} in feeds.yaml" if f.origin == FROM_FILE
                                                else f"followed by {escape(f.source)}") for f in listing.follows]
        follows = "*This channel follows* · 本频道关注\n" + "\n".join(lines)
    else:
        follows = "This channel follows no topic yet · 本频道尚未关注任何主题. Try `/brief follow <topic>`."
    blocks = [section_block(fit(follows, MAX_SECTION_TEXT))]
    if listing.feeds:
        blocks += _line_sections(["*Feeds behind them* · 订阅源", *(_status_line(f, tz) for f in listing.feeds)])
    return f"{len(listing.follows)} follows, {len(listing.feeds)} feeds", blocks[:MAX_BLOCKS]


def render_query_result(result: QueryResult, settings: Settings, tz: str | None = None
                        ) -> list[tuple[str, list[dict]]]:
    """Messages (fallback text, blocks) answering a `/brief` command, in order."""
    tz = tz or settings.timezone
    command = result.command
    if command.action == "help":
        return [render_help(result, settings)]
    if command.action == "unknown-topic":
        return [render_unknown_topic(command)]
    if command.action == "latest":
        topic = command.topic or ""
        label = f"{settings.topic_label(topic, 'en')} / {settings.topic_label(topic, 'zh')}"
        return [_brief_list(f"*Latest {command.count} — {escape(label)}*", result.briefs, settings, tz,
                            f"No briefs yet for {escape(label)}.")]
    if command.action == "search":
        words = " ".join(command.words)
        return [_brief_list(f"*Search:* {escape(words)}", result.briefs, settings, tz,
                            f"No briefs match {escape(words)}.")]
    if command.action == "feeds":
        return [render_feeds(result.feeds, tz)]
    if result.change is not None:
        return [render_change(result.change)]
    if result.listing is not None:
        return [render_listing(result.listing, tz)]
    if command.action == "digest":
        if result.digest is None:
            return [("No digest available.", [section_block("No digest available.")])]
        return render_digest(result.digest, settings, result.digest.timezone or tz)
    return [render_help(result, settings)]


# --------------------------------------------------------------------------- who may change things

def slack_admins(settings: Settings) -> tuple[list[str], list[str]]:
    """The user IDs and user-group IDs of the `admins` setting's `slack:` entries."""
    users, groups = [], []
    for entry in settings.admins:
        kind, _, ident = entry.partition(":")
        if kind == "slack" and USER_ID.fullmatch(ident):
            users.append(ident)
        elif kind == "slack" and GROUP_ID.fullmatch(ident):
            groups.append(ident)
    return users, groups


async def admin_refusal(client: AsyncWebClient, settings: Settings, user_id: str) -> str | None:
    """None when `user_id` may subscribe, unsubscribe, follow and unfollow; else why not and who may.

    With `admins` set, its users and the members of its user groups (usergroups.users.list, scope
    usergroups:read); without it, workspace admins and owners (users.info, scope users:read)."""
    users, groups = slack_admins(settings)
    try:
        if users or groups:
            if user_id in users:
                return None
            for group in groups:
                members = (await client.usergroups_users_list(usergroup=group)).get("users") or []
                if user_id in members:
                    return None
            who = ", ".join([f"<@{u}>" for u in users] + [f"members of <!subteam^{g}>" for g in groups])
            return (f"Only {who} can change subscriptions and follows here (`admins` in feeds.yaml). "
                    "Everyone can use `/brief list`.")
        user = (await client.users_info(user=user_id)).get("user") or {}
        if user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"):
            return None
    except SlackApiError as exc:
        error, needed = exc.response.get("error"), exc.response.get("needed")
        log.warning("/brief admin check for %s failed: %s%s", user_id, error, f" (needs {needed})" if needed else "")
        scope = f"; the app needs the `{needed}` scope" if needed else ""
        return f"briefbot could not check who may change subscriptions (Slack said `{error}`{scope}); see docs/slack.md."
    return ("Only workspace admins and owners can change subscriptions and follows here; an operator can "
            "name other people or user groups in feeds.yaml (`admins`). Everyone can use `/brief list`.")


def _unescape(text: str) -> str:
    """A command's text as typed: Slack sends `&`, `<` and `>` as entities (a feed URL's `&` too)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --------------------------------------------------------------------------- Bolt app

def build_slack_app(context: AdapterContext) -> AsyncApp:
    """The Bolt app answering `/brief`. Needs SLACK_BOT_TOKEN (Bolt checks it with auth.test)."""
    env = SlackEnv.from_env(context.env)
    if not env.bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set: the Slack app needs the bot token (xoxb-...) "
                         "to answer /brief; see docs/slack.md")
    client = make_web_client(env.bot_token, env.api_base_url)
    # Without a signing secret (Socket Mode) use an unguessable one, never an empty HMAC key:
    # HTTP requests then always fail the signature check instead of being forgeable.
    signing_secret = env.signing_secret or secrets.token_hex(32)
    bolt = AsyncApp(name="briefbot", client=client, signing_secret=signing_secret,
                    request_verification_enabled=True, logger=logging.getLogger("briefbot.slack.bolt"))

    async def acknowledge(ack) -> None:
        # Empty ack: the answer follows via response_url, so nothing is shown twice.
        await ack()

    async def answer(command: dict, respond) -> None:
        text = _unescape(command.get("text") or "").strip()
        queries = context.commands()
        user_id = command.get("user_id") or ""
        try:
            parsed = queries.parse_command(text)
            if parsed.changes:
                refusal = await admin_refusal(client, context.settings(), user_id)
                if refusal is not None:
                    # Built here, mentions included: nothing in it comes from the user or a feed.
                    await respond(text=refusal, blocks=[section_block(f":lock: {refusal}")],
                                  response_type="ephemeral", replace_original=False)
                    return
            target = Target("slack", command.get("channel_id") or "")
            result = await queries.answer_for(parsed, target, f"slack:{user_id}")
            messages = render_query_result(result, context.settings())
        except Exception:
            log.exception("/brief %r failed for user %s", text, command.get("user_id"))
            await respond(text="Sorry, briefbot could not answer that right now; the error is in the bot's log.",
                          response_type="ephemeral", replace_original=False)
            return
        response_type = "in_channel" if parsed.public and parsed.action != "unknown-topic" else "ephemeral"
        for fallback, blocks in messages:
            await respond(text=fallback, blocks=blocks, response_type=response_type, replace_original=False)

    bolt.command("/brief")(ack=acknowledge, lazy=[answer])
    return bolt


@dataclass
class SlackRunner:
    """A running Slack connection; `await runner.stop()` to shut it down."""

    mode: str  # "socket" | "http"
    bolt: AsyncApp
    socket_handler: Any = None
    web_runner: web.AppRunner | None = None
    port: int | None = None

    async def stop(self) -> None:
        if self.socket_handler is not None:
            await self.socket_handler.close_async()
            self.socket_handler = None
        if self.web_runner is not None:
            await self.web_runner.cleanup()
            self.web_runner = None


def build_web_app(bolt: AsyncApp, path: str = EVENTS_PATH) -> web.Application:
    """Bolt's aiohttp application (POST `path`); signature checking is Bolt's RequestVerification."""
    return bolt.web_app(path=path)


async def start_slack(context: AdapterContext, *, host: str = "0.0.0.0", path: str = EVENTS_PATH) -> SlackRunner | None:
    """Connect the `/brief` command: Socket Mode if SLACK_APP_TOKEN, else HTTP on PORT if
    SLACK_SIGNING_SECRET. Returns None (posting still works) when neither is configured."""
    env = SlackEnv.from_env(context.env)
    if not env.bot_token:
        log.info("Slack commands off: SLACK_BOT_TOKEN is not set")
        return None
    if not (env.app_token or env.signing_secret):
        log.info("Slack commands off: set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode); "
                 "posting to Slack channels works without them")
        return None
    bolt = build_slack_app(context)
    if env.app_token:
        if not env.app_token.startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN must be an app-level token starting with xapp- "
                             "(Basic Information → App-Level Tokens, scope connections:write)")
        handler = AsyncSocketModeHandler(bolt, env.app_token, web_client=bolt.client)
        await handler.connect_async()
        log.info("Slack commands: connected in Socket Mode")
        return SlackRunner(mode="socket", bolt=bolt, socket_handler=handler)

    runner = web.AppRunner(build_web_app(bolt, path))
    await runner.setup()
    port = context.env.port if context.env.port is not None else DEFAULT_PORT
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port
    log.info("Slack commands: HTTP mode on %s:%s%s (request signatures checked)", host, bound, path)
    return SlackRunner(mode="http", bolt=bolt, web_runner=runner, port=bound)
