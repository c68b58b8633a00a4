"""Slack's environment variables: the bot token, Socket Mode's app token, HTTP mode's signing secret."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Env

BOT_TOKEN = "SLACK_BOT_TOKEN"
APP_TOKEN = "SLACK_APP_TOKEN"
SIGNING_SECRET = "SLACK_SIGNING_SECRET"
API_BASE = "SLACK_API_BASE_URL"


@dataclass(frozen=True)
class SlackEnv:
    bot_token: str | None
    app_token: str | None
    signing_secret: str | None
    api_base_url: str | None

    @classmethod
    def from_env(cls, env: Env) -> "SlackEnv":
        return cls(bot_token=env.get(BOT_TOKEN), app_token=env.get(APP_TOKEN),
                   signing_secret=env.get(SIGNING_SECRET), api_base_url=env.get(API_BASE))

    @property
    def http_mode(self) -> bool:
        """Commands arrive over HTTP on PORT (no Socket Mode token, a signing secret to check them)."""
        return bool(self.bot_token and self.signing_secret and not self.app_token)

    @property
    def commands_configured(self) -> bool:
        return bool(self.bot_token and (self.app_token or self.signing_secret))
