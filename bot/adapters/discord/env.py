"""Discord's environment variables: the bot token, the API base and the guilds to sync to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.config import Env

TOKEN = "DISCORD_BOT_TOKEN"
API_BASE = "DISCORD_API_BASE_URL"
GUILDS = "DISCORD_GUILD_IDS"


@dataclass(frozen=True)
class DiscordEnv:
    bot_token: str | None
    api_base_url: str | None
    guild_ids: tuple[int, ...]

    @classmethod
    def from_env(cls, env: Env) -> "DiscordEnv":
        guilds = tuple(int(g) for g in re.split(r"[,\s]+", env.get(GUILDS) or "") if g.isdigit())
        return cls(bot_token=env.get(TOKEN), api_base_url=env.get(API_BASE), guild_ids=guilds)
