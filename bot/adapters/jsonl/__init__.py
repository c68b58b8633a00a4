"""The jsonl adapter: one JSON object a line appended to a file (`jsonl:PATH`)."""

from __future__ import annotations

from bot.adapters.jsonl.deliver import JsonlDeliverer
from bot.config import Env
from bot.delivery.adapter import AdapterContext, CliCommand, Deliverer, Service
from bot.models import Target


class JsonlAdapter:
    name = "jsonl"
    target_kinds = {"jsonl": "jsonl:PATH"}
    secret_env: tuple[str, ...] = ()
    quiet_loggers: tuple[str, ...] = ()

    def parse_target(self, kind: str, address: str) -> Target:
        if not address.strip():
            raise ValueError("target 'jsonl:' needs a file path, e.g. jsonl:out/briefs.jsonl")
        return Target("jsonl", address)

    def deliverer(self, context: AdapterContext) -> Deliverer:
        return JsonlDeliverer(context.settings())

    async def start(self, context: AdapterContext) -> Service | None:
        return None

    def health(self, env: Env) -> dict:
        return {}

    def claims_port(self, env: Env) -> bool:
        return False

    def cli_commands(self) -> list[CliCommand]:
        return []


__all__ = ["JsonlAdapter", "JsonlDeliverer"]
