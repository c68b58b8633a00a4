"""The console adapter: briefs and digests printed to standard output."""

from __future__ import annotations

from pathlib import Path

from bot.adapters.console.deliver import ConsoleDeliverer, render_brief_text
from bot.delivery.adapter import AdapterContext, Deliverer, PostingOnly
from bot.models import Target


class ConsoleAdapter(PostingOnly):
    name = "console"
    target_kinds = {"console": "console"}

    def parse_target(self, kind: str, address: str, base_dir: Path | None = None) -> Target:
        if address:
            raise ValueError(f"target 'console:{address}': the console takes no address; write just console")
        return Target("console")

    def deliverer(self, context: AdapterContext) -> Deliverer:
        return ConsoleDeliverer(context.console_stream, context.settings())


__all__ = ["ConsoleAdapter", "render_brief_text"]
