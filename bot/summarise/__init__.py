"""Turning an article into brief content: extractive (offline) or LLM (grounded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Article:
    """A relevant item's text, cleaned of HTML and page boilerplate, ready to summarise."""

    feed: str
    url: str
    title: str
    text: str  # plain text, boilerplate removed; the only ground truth for numbers
    lang: str  # "en" | "zh" (source language)
    topics: list[str] = field(default_factory=list)
    published: datetime | None = None
