"""The jsonl adapter: one JSON object a line appended to a file (`jsonl:PATH`)."""

from __future__ import annotations

from bot.adapters.jsonl.deliver import JsonlDeliverer
from bot.delivery.adapter import AdapterContext, Deliverer, PostingOnly
from bot.models import Target


class JsonlAdapter(PostingOnly):
    name = "jsonl"
    target_kinds = {"jsonl": "jsonl:PATH"}

    def parse_target(self, kind: str, address: str) -> Target:
        if not address.strip():
            raise ValueError("target 'jsonl:' needs a file path, e.g. jsonl:out/briefs.jsonl")
        return Target("jsonl", address)

    def deliverer(self, context: AdapterContext) -> Deliverer:
        return JsonlDeliverer(context.settings())


__all__ = ["JsonlAdapter", "JsonlDeliverer"]
