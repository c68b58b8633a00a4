"""A platform is one adapter: a small adapter that exists only in this test (`memo:BOARD` targets)
receives briefs, a digest and a `/brief` command through the same code paths as Slack and Discord —
config validation, the container, the outbox dispatcher, digest runs and the runner's services."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from feedgen import Entry, make_env, rss
from loopback import Reply

from bot.app.container import build_app, close_app, default_adapters, make_digest_deps, make_dispatcher, make_poller
from bot.app.runner import BotRunner
from bot.commands import QueryResult
from bot.config import ConfigError, Env, load_config
from bot.delivery.adapter import AdapterContext, AdapterRegistry, CliCommand
from bot.digest import run_digest
from bot.models import Brief, Digest, Target

BOARD_NAMES = ("ops", "desk")


@dataclass
class MemoBoard:
    """Where memo targets post: what a chat platform's server would have received."""

    briefs: list[tuple[str, Brief]] = field(default_factory=list)
    digests: list[tuple[str, Digest]] = field(default_factory=list)
    answers: list[QueryResult] = field(default_factory=list)


class MemoDeliverer:
    def __init__(self, board: MemoBoard):
        self.board = board

    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None:
        self.board.briefs.append((target.address, brief))
        return f"memo-{len(self.board.briefs)}"

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None:
        self.board.digests.append((target.address, digest))
        return delivery_key

    async def aclose(self) -> None:
        pass


class MemoService:
    """The adapter's command listener: a `/brief` typed on the memo board."""

    def __init__(self, context: AdapterContext, board: MemoBoard):
        self.context, self.board = context, board
        self.stopped = asyncio.Event()

    async def type_command(self, text: str) -> QueryResult:
        commands = self.context.commands()
        result = await asyncio.to_thread(commands.run, text)
        self.board.answers.append(result)
        return result

    async def stop(self) -> None:
        self.stopped.set()


class MemoAdapter:
    name = "memo"
    target_kinds = {"memo": "memo:BOARD"}
    secret_env = ("MEMO_TOKEN",)
    quiet_loggers = ()

    def __init__(self) -> None:
        self.board = MemoBoard()
        self.service: MemoService | None = None

    def parse_target(self, kind: str, address: str, base_dir: Path | None = None) -> Target:
        if address not in BOARD_NAMES:
            raise ValueError(f"memo target 'memo:{address}': no such board (boards: {', '.join(BOARD_NAMES)})")
        return Target("memo", address)

    def deliverer(self, context: AdapterContext) -> MemoDeliverer:
        return MemoDeliverer(self.board)

    async def start(self, context: AdapterContext) -> MemoService:
        self.service = MemoService(context, self.board)
        return self.service

    def health(self, env: Env) -> dict:
        return {"boards": len(BOARD_NAMES)}

    def claims_port(self, env: Env) -> bool:
        return False

    def cli_commands(self) -> list[CliCommand]:
        return []


CONFIG = """\
languages: [en, zh]
topics:
  tariff:
    label: {{en: Tariffs, zh: 关税}}
    keywords: [tariff, 关税]
feeds:
  - {{name: wire, url: "{url}"}}
routes:
  - {{name: ops, to: ["{target}"]}}
digests:
  - {{name: morning, cron: "0 8 * * *", to: ["{target}"]}}
"""

TARIFF = Entry("US raises tariff on steel imports to 25%",
               "The US raised its tariff on steel imports to 25% on Monday, the commerce department said.",
               guid="t-1", link="https://wire.example/steel")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path, url: str, target: str):
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG.format(url=url, target=target), encoding="utf-8")
    return path


def test_config_validates_the_new_kind_through_its_adapter(tmp_path):
    registry = AdapterRegistry([*default_adapters(), MemoAdapter()])
    path = write_config(tmp_path, "https://wire.example/feed.xml", "memo:nowhere")
    with pytest.raises(ConfigError) as info:
        load_config(path, registry.parse_target)
    assert "routes[0].to[0]" in str(info.value) and "no such board" in str(info.value)
    # Without the adapter the kind is unknown, and the message lists what is known.
    with pytest.raises(ConfigError) as unknown:
        load_config(write_config(tmp_path, "https://wire.example/feed.xml", "memo:ops"),
                    AdapterRegistry(default_adapters()).parse_target)
    assert "unknown target kind 'memo'" in str(unknown.value) and "slack:CHANNEL_ID" in str(unknown.value)


async def test_briefs_digest_and_command_reach_the_new_adapter(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(200, rss([TARIFF]), content_type="application/rss+xml"))
    memo = MemoAdapter()
    adapters = [*default_adapters(), memo]
    settings = load_config(write_config(tmp_path, http_server.url("/feed.xml"), "memo:ops"),
                           AdapterRegistry(adapters).parse_target)
    app = build_app(settings, make_env(db_url, metrics_port=free_port(), MEMO_TOKEN="memo-secret-token"), adapters=adapters)
    try:
        reports = await make_poller(app).poll_all(force=True)
        assert [len(r.new_briefs) for r in reports] == [1]
        while await make_dispatcher(app).dispatch_once():
            pass
        [(board, brief)] = memo.board.briefs
        assert board == "ops" and brief.title["en"] == TARIFF.title and brief.topics == ["tariff"]

        morning = datetime.now(timezone.utc)
        assert await run_digest(make_digest_deps(app), settings.digests[0], morning)
        while await make_dispatcher(app).dispatch_once():
            pass
        [(board, digest)] = memo.board.digests
        assert board == "ops" and [b.id for s in digest.sections for b in s.briefs] == [brief.id]

        runner = BotRunner(app, role="web")
        await runner.start()
        try:
            assert memo.service is not None
            answer = await memo.service.type_command("tariff 1")
            assert answer.command.action == "latest" and [b.id for b in answer.briefs] == [brief.id]
        finally:
            await runner.stop()
        assert memo.service.stopped.is_set()
        assert "memo-secret-token" in app.secrets()
    finally:
        await close_app(app)
