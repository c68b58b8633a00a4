"""What every feed reader in `ingest` produces: entries and a feed, or the reason there are none.

Their own module so that each reader (XML in `parse`, JSON Feed in `jsonfeed`) builds the same
shapes without one reader importing the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.ingest.urls import redact_url

__all__ = ["FeedParseError", "ParsedEntry", "ParsedFeed"]


@dataclass
class ParsedEntry:
    guid: str | None
    link: str | None
    title: str
    text: str  # plain text of the richest of content/summary, boilerplate stripped
    published: datetime | None  # aware, UTC
    author: str | None


@dataclass
class ParsedFeed:
    title: str
    version: str
    encoding: str
    entries: list[ParsedEntry] = field(default_factory=list)
    problem: str | None = None  # usable but not clean (bad charset label, malformed XML, ...)


class FeedParseError(Exception):
    """The body is not a usable feed; the message names the URL and why."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"{redact_url(url)}: {reason}")
