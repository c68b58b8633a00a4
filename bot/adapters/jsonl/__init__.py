"""The jsonl adapter: one JSON object a line appended to a file (`jsonl:PATH`)."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from bot.adapters.jsonl.deliver import JsonlDeliverer
from bot.delivery.adapter import AdapterContext, Deliverer, PostingOnly
from bot.models import Target


class JsonlAdapter(PostingOnly):
    name = "jsonl"
    target_kinds = {"jsonl": "jsonl:PATH"}

    def parse_target(self, kind: str, address: str, base_dir: Path | None = None) -> Target:
        """One spelling per file: a relative path is resolved against `base_dir` (feeds.yaml's
        directory) and normalised, so `out/x.jsonl`, `./out/x.jsonl` and its absolute path are
        one target and a brief is written once."""
        path = address.strip()
        if not path:
            raise ValueError("target 'jsonl:' needs a file path, e.g. jsonl:out/briefs.jsonl")
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in path):
            raise ValueError("a jsonl target's path must not contain control characters or undecodable bytes")
        if base_dir is not None and not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        return Target("jsonl", os.path.normpath(path))

    def deliverer(self, context: AdapterContext) -> Deliverer:
        return JsonlDeliverer(context.settings())


__all__ = ["JsonlAdapter", "JsonlDeliverer"]
