"""The console adapter: briefs and digests printed to standard output."""

from __future__ import annotations

from bot.adapters.console.deliver import ConsoleDeliverer, render_brief_text
from bot.config import Env
from bot.delivery.adapter import AdapterContext, CliCommand, Deliverer, Service
from bot.models import Target


class ConsoleAdapter:
    name = "console"
    target_kinds = {"console": "console"}
    secret_env: tuple[str, ...] = ()
    quiet_loggers: tuple[str, ...] = ()

    def parse_target(self, kind: str, address: str) -> Target:
        if address:
            raise ValueError(f"target 'console:{address}': the console takes no address; write just console")
        return Target("console")

    def deliverer(self, context: AdapterContext) -> Deliverer:
        return ConsoleDeliverer(context.console_stream, context.settings())

    async def start(self, context: AdapterContext) -> Service | None:
        return None

    def health(self, env: Env) -> dict:
        return {}

    def claims_port(self, env: Env) -> bool:
        return False

    def cli_commands(self) -> list[CliCommand]:
        return []


__all__ = ["ConsoleAdapter", "render_brief_text"]
