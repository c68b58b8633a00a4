"""The Slack adapter: posts to `slack:CHANNEL_ID` with the bot token and answers `/brief` over Bolt."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bot.adapters.slack import env as slack_env
from bot.adapters.slack.env import SlackEnv
from bot.config import Env
from bot.delivery.adapter import AdapterContext, CliCommand, Deliverer, Service
from bot.delivery.outbox import MissingCredentials
from bot.models import Target

log = logging.getLogger("briefbot.slack")

_CHANNEL_ID = re.compile(r"[CDG][A-Z0-9]{6,}")
# Slack's ID formats for the `admins` setting: users (U…, W… on Enterprise Grid) and user groups (S…).
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")


class SlackAdapter:
    name = "slack"
    target_kinds = {"slack": "slack:CHANNEL_ID"}
    secret_env = (slack_env.BOT_TOKEN, slack_env.APP_TOKEN, slack_env.SIGNING_SECRET)
    quiet_loggers = ("slack_bolt", "slack_sdk")

    def parse_target(self, kind: str, address: str, base_dir: Path | None = None) -> Target:
        if not _CHANNEL_ID.fullmatch(address):
            raise ValueError(f"slack target 'slack:{address}': channel id must look like C0123ABC (not a #name)")
        return Target("slack", address)

    def deliverer(self, context: AdapterContext) -> Deliverer:
        settings = SlackEnv.from_env(context.env)
        if not settings.bot_token:
            return MissingCredentials(slack_env.BOT_TOKEN)
        # slack_sdk (and Bolt, in start) load only in a bot that posts to (or listens on) Slack.
        from bot.adapters.slack.deliver import SlackDeliverer

        current = context.settings()
        return SlackDeliverer(settings.bot_token, settings.api_base_url, current.timezone, settings=current)

    async def start(self, context: AdapterContext) -> Service | None:
        settings = SlackEnv.from_env(context.env)
        if context.role == "web" and not (settings.bot_token and settings.signing_secret):
            log.warning("--role web serves Slack's HTTP endpoint, but SLACK_BOT_TOKEN/SLACK_SIGNING_SECRET are not set")
        if not settings.commands_configured:
            return None
        from bot.adapters.slack.commands import start_slack

        return await start_slack(context)

    def health(self, env: Env) -> dict:
        settings = SlackEnv.from_env(env)
        mode = "http" if settings.http_mode else "socket" if settings.commands_configured else "off"
        return {"posting": bool(settings.bot_token), "commands": mode}

    def claims_port(self, env: Env) -> bool:
        # In HTTP mode PORT belongs to Bolt's endpoint; health then needs METRICS_PORT.
        return SlackEnv.from_env(env).http_mode

    def cli_commands(self) -> list[CliCommand]:
        return []

    def admin_problem(self, ident: str) -> str | None:
        if USER_ID.fullmatch(ident) or GROUP_ID.fullmatch(ident):
            return None
        return "not a Slack user ID (U…, W…) or user-group ID (S…)"


__all__ = ["SlackAdapter"]
