"""A platform is one adapter: a small adapter that exists only in this test (`memo:BOARD` targets)
receives briefs, a follow-up, a digest and a `/brief` command through the same code paths as Slack and
Discord — config validation, the container, the outbox dispatcher, digest runs and the runner's services."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from feedgen import Entry, make_env, rss
from loopback import Reply

from bot.alerts import Alert, render_alert_text
from bot.app.container import (build_app, close_app, default_adapters, make_alert_check, make_digest_deps,
                               make_dispatcher, make_poller)
from bot.app.runner import BotRunner
from bot.commands import QueryResult
from bot.config import ConfigError, Env, load_config
from bot.delivery.adapter import AdapterContext, AdapterRegistry, CliCommand, FollowUp
from bot.digest import run_digest
from bot.models import Brief, Digest, Target

BOARD_NAMES = ("ops", "desk")


@dataclass
class MemoBoard:
    """Where memo targets post: what a chat platform's server would have received."""

    briefs: list[tuple[str, Brief]] = field(default_factory=list)
    digests: list[tuple[str, Digest]] = field(default_factory=list)
    follow_ups: list[tuple[str, FollowUp]] = field(default_factory=list)
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (board, rendered text)
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

    async def deliver_follow_up(self, target: Target, follow_up: FollowUp, *, delivery_key: str,
                                attempt: int) -> str | None:
        self.board.follow_ups.append((target.address, follow_up))
        return f"memo-reply-{len(self.board.follow_ups)}"

    async def deliver_alert(self, target: Target, alert: Alert, *, delivery_key: str, attempt: int) -> str | None:
        self.board.alerts.append((target.address, render_alert_text(alert, ["en", "zh"])))
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
  - {{name: desk, url: "{desk_url}"}}
routes:
  - {{name: ops, to: ["{target}"]}}
digests:
  - {{name: morning, cron: "0 8 * * *", to: ["{target}"]}}
"""

TARIFF = Entry("US raises tariff on steel imports to 25%",
               "The US raised its tariff on steel imports to 25% on Monday, the commerce department said.",
               guid="t-1", link="https://wire.example/steel")
# The same story from another outlet, with a figure of its own.
TARIFF_DESK = Entry("Steel import tariff raised to 25% by the US",
                    "The US commerce department raised the tariff on steel imports to 25% on Monday, affecting "
                    "$40 billion of imports.", guid="d-1", link="https://desk.example/steel-tariff")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path, url: str, target: str):
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG.format(url=url, desk_url=url.replace("feed.xml", "desk.xml"), target=target),
                    encoding="utf-8")
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
    http_server.route("/desk.xml", Reply(200, rss([]), content_type="application/rss+xml"))
    memo = MemoAdapter()
    adapters = [*default_adapters(), memo]
    settings = load_config(write_config(tmp_path, http_server.url("/feed.xml"), "memo:ops"),
                           AdapterRegistry(adapters).parse_target)
    app = build_app(settings, make_env(db_url, metrics_port=free_port(), MEMO_TOKEN="memo-secret-token"), adapters=adapters)
    try:
        reports = await make_poller(app).poll_all(force=True)
        assert [len(r.new_briefs) for r in reports] == [1, 0]
        while await make_dispatcher(app).dispatch_once():
            pass
        [(board, brief)] = memo.board.briefs
        assert board == "ops" and brief.title["en"] == TARIFF.title and brief.topics == ["tariff"]

        # Another outlet joins the posted story: the adapter gets a follow-up naming the posted message.
        http_server.route("/desk.xml", Reply(200, rss([TARIFF_DESK]), content_type="application/rss+xml"))
        assert [r.merged for r in await make_poller(app).poll_all(force=True)] == [0, 1]
        while await make_dispatcher(app).dispatch_once():
            pass
        [(board, follow_up)] = memo.board.follow_ups
        assert board == "ops" and follow_up.parent_ref == "memo-1" and follow_up.brief.id == brief.id
        assert follow_up.source.url == TARIFF_DESK.link and follow_up.headline() == "Also reported by desk (en)"
        assert "$40 billion" in follow_up.figures_text()

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


async def test_an_alert_reaches_the_new_adapter(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(410, b"gone"))
    http_server.route("/desk.xml", Reply(200, rss([]), content_type="application/rss+xml"))
    memo = MemoAdapter()
    adapters = [*default_adapters(), memo]
    path = write_config(tmp_path, http_server.url("/feed.xml"), "memo:ops")
    path.write_text(path.read_text(encoding="utf-8") + "alerts: {to: ['memo:desk']}\n", encoding="utf-8")
    settings = load_config(path, AdapterRegistry(adapters).parse_target)
    app = build_app(settings, make_env(db_url), adapters=adapters)
    try:
        await make_poller(app).poll_all(force=True)
        assert make_alert_check(app).run().alerted != []
        while await make_dispatcher(app).dispatch_once():
            pass
        [(board, text)] = memo.board.alerts
        assert board == "desk" and "Alert: Feed wire is switched off" in text and "告警" in text
    finally:
        await close_app(app)
