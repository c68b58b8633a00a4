from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from loopback import LoopbackServer  # noqa: E402

# Tests serve feeds from 127.0.0.1: allow private URLs unless a test says otherwise.
os.environ.setdefault("BRIEFBOT_ALLOW_PRIVATE_URLS", "1")
for _secret in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                "SLACK_SIGNING_SECRET", "DISCORD_BOT_TOKEN", "DATABASE_URL", "BRIEFBOT_CONFIG"):
    os.environ.pop(_secret, None)


@pytest.fixture
def http_server():
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/briefbot.db"
