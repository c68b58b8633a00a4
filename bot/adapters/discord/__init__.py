"""The Discord adapter: posts to `discord:CHANNEL_ID` as the bot or to `discord-webhook:URL`, and
answers the `/brief` app command over the gateway."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.adapters.discord import env as discord_env
from bot.adapters.discord.env import DiscordEnv
from bot.config import Env
from bot.delivery.adapter import AdapterContext, CliCommand, Deliverer, Service
from bot.delivery.outbox import MissingCredentials
from bot.models import Target

if TYPE_CHECKING:
    from bot.adapters.discord.deliver import DiscordDeliverer

SNOWFLAKE = re.compile(r"\d{15,21}")
_WEBHOOK_URL = re.compile(r"^(https?://[^/]+(?:/[^/]+)*?/api(?:/v\d+)?/webhooks/)(\d+)/([\w.-]+)/?$")
# Where Discord serves webhooks. Another origin is accepted only when DISCORD_API_BASE_URL names it
# (a proxy, a test server): a webhook URL carries its token, which must go nowhere else.
DISCORD_HOSTS = frozenset(f"{prefix}{domain}" for prefix in ("", "ptb.", "canary.")
                          for domain in ("discord.com", "discordapp.com"))


def redact_webhook_url(url: str) -> str:
    match = _WEBHOOK_URL.match(url)
    return f"{match.group(1)}{match.group(2)}/***" if match else "***"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _webhook_origin_problem(url: str, api_base: str | None) -> str | None:
    """Why this webhook URL may not be used, or None: https on Discord's hosts, or the origin of
    DISCORD_API_BASE_URL."""
    try:
        scheme, host, port = _origin(url)
        base = _origin(api_base) if api_base else None
    except ValueError as exc:  # a port that is not a number
        return f"not a valid URL ({exc})"
    if base is not None and (scheme, host, port) == base:
        return None
    if scheme != "https":
        return "must use https (a webhook URL carries its token)"
    if host not in DISCORD_HOSTS or port not in (None, 443):
        shown = f"{host}:{port}" if port else host
        return (f"host {shown} is not Discord's: use discord.com or discordapp.com (or their ptb./canary. "
                "hosts), or set DISCORD_API_BASE_URL to send elsewhere")
    return None


class _ChannelOrWebhook:
    """Bot-token channel targets, or webhook targets (no token needed) sharing one deliverer."""

    def __init__(self, bot: DiscordDeliverer, no_token: MissingCredentials | None):
        self.bot, self.no_token = bot, no_token

    def _sender(self, target: Target):
        return self.no_token if target.kind == "discord" and self.no_token else self.bot

    async def deliver_brief(self, target: Target, brief, *, delivery_key: str, attempt: int) -> str | None:
        return await self._sender(target).deliver_brief(target, brief, delivery_key=delivery_key, attempt=attempt)

    async def deliver_digest(self, target: Target, digest, *, delivery_key: str, attempt: int) -> str | None:
        return await self._sender(target).deliver_digest(target, digest, delivery_key=delivery_key, attempt=attempt)

    async def deliver_notice(self, target: Target, notice, *, delivery_key: str, attempt: int) -> str | None:
        return await self._sender(target).deliver_notice(target, notice, delivery_key=delivery_key, attempt=attempt)

    async def deliver_alert(self, target: Target, alert, *, delivery_key: str, attempt: int) -> str | None:
        return await self._sender(target).deliver_alert(target, alert, delivery_key=delivery_key, attempt=attempt)

    async def deliver_follow_up(self, target: Target, follow_up, *, delivery_key: str, attempt: int) -> str | None:
        # A follow-up exists only for a story this deliverer posted, so the bot's credentials were there.
        return await self.bot.deliver_follow_up(target, follow_up, delivery_key=delivery_key, attempt=attempt)

    async def message_link(self, target: Target, external_id: str) -> str | None:
        # Only a posted message has an id to link, so whoever posted it could: the bot or a webhook.
        return await self.bot.message_link(target, external_id)

    @property
    def settings(self):
        """The settings the deliverer renders with (which routes ask for follow-ups)."""
        return self.bot.settings

    async def aclose(self) -> None:
        await self.bot.aclose()


class DiscordAdapter:
    name = "discord"
    target_kinds = {"discord": "discord:CHANNEL_ID", "discord-webhook": "discord-webhook:URL"}
    secret_env = (discord_env.TOKEN,)
    quiet_loggers = ("discord",)

    def parse_target(self, kind: str, address: str, base_dir: Path | None = None) -> Target:
        if kind == "discord":
            if not SNOWFLAKE.fullmatch(address):
                raise ValueError(f"discord target 'discord:{address}': channel id must be a numeric snowflake")
            return Target("discord", address)
        if not _WEBHOOK_URL.match(address):
            raise ValueError("discord-webhook target must be https://discord.com/api/webhooks/ID/TOKEN")
        problem = _webhook_origin_problem(address, os.environ.get(discord_env.API_BASE))
        if problem:
            raise ValueError(f"discord-webhook target {redact_webhook_url(address)}: {problem}")
        return Target("discord-webhook", address, shown="discord-webhook:" + redact_webhook_url(address))

    def deliverer(self, context: AdapterContext) -> Deliverer:
        # discord.py (~8 MiB resident) loads only in a bot that posts to or listens on Discord.
        from bot.adapters.discord.deliver import DiscordDeliverer

        settings = DiscordEnv.from_env(context.env)
        bot = DiscordDeliverer(settings.bot_token, settings.api_base_url, settings=context.settings())
        return _ChannelOrWebhook(bot, None if settings.bot_token else MissingCredentials(discord_env.TOKEN))

    async def start(self, context: AdapterContext) -> Service | None:
        # The gateway connection belongs to the worker; a web process serves only HTTP endpoints.
        if context.role == "web" or not DiscordEnv.from_env(context.env).bot_token:
            return None
        from bot.adapters.discord.commands import start_discord

        return await start_discord(context)

    def health(self, env: Env) -> dict:
        return {"posting": bool(DiscordEnv.from_env(env).bot_token)}

    def claims_port(self, env: Env) -> bool:
        return False

    def cli_commands(self) -> list[CliCommand]:
        return [CliCommand("discord-sync", "register the /brief command with Discord", _sync)]

    def admin_problem(self, ident: str) -> str | None:
        return None if SNOWFLAKE.fullmatch(ident) else "not a Discord role ID (a number of 15-21 digits)"


async def _sync(_args: argparse.Namespace, context: AdapterContext) -> int:
    if not DiscordEnv.from_env(context.env).bot_token:
        print(f"briefbot: {discord_env.TOKEN} is not set", file=sys.stderr)
        return 1
    from bot.adapters.discord.commands import sync_commands

    print("synced: " + ", ".join(await sync_commands(context)))
    return 0


__all__ = ["DiscordAdapter", "redact_webhook_url"]
