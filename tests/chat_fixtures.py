"""The fake Slack and Discord servers as pytest fixtures, for tests that post to both.

Import the fixtures into a test module (`from chat_fixtures import discord_api, slack  # noqa: F401`)."""

from __future__ import annotations

import pytest

from bot.adapters.discord.deliver import set_api_base
from fakes.discord_api import FakeDiscord
from fakes.slack_api import FakeSlack

DISCORD_CHANNEL = "123456789012345678"
DISCORD_TOKEN = "fake-bot-token-0123456789"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def discord_api():
    """A fake Discord with one channel the bot (token DISCORD_TOKEN) may post to."""
    fake = await FakeDiscord(bot_token=DISCORD_TOKEN).start()
    fake.add_channel(DISCORD_CHANNEL)
    yield fake
    await fake.stop()
    set_api_base(None)
