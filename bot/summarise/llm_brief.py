"""What the LLM summariser returns and caches: an LLMBrief, stored under a key made from everything
that shapes it (content, prompt, model, checks)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.models import Figure


@dataclass
class LLMBrief:
    relevant: bool
    title: dict[str, str]
    summary: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Languages in which nothing of the model's title or summary held up against the source: empty
    # here, the caller gives them the article's own text (or its stand-in) instead.
    missing: list[str] = field(default_factory=list)

    def to_cache(self) -> dict:
        data = asdict(self)
        data["figures"] = [f.model_dump(mode="json") for f in self.figures]
        return data

    @classmethod
    def from_cache(cls, data: dict) -> "LLMBrief":
        return cls(relevant=bool(data["relevant"]), title=dict(data["title"]), summary=dict(data["summary"]),
                   figures=[Figure.model_validate(f) for f in data.get("figures", [])],
                   notes=list(data.get("notes", [])), missing=list(data.get("missing", [])))


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title.strip()}\x1f{text.strip()}".encode("utf-8")).hexdigest()


def cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()
