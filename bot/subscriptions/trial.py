"""Reading a feed URL once before it is accepted: fetched as a poll fetches it (the same fetcher,
so the same SSRF guard, size and redirect limits), parsed, and its entries matched to topics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.analyse.topics import TopicMatcher
from bot.config import Settings
from bot.ingest.fetch import Fetcher, FetchResult
from bot.ingest.parse import FeedParseError, parse_feed
from bot.ingest.urls import redact_url

BLOCKED, UNREACHABLE, NOT_A_FEED = "blocked", "unreachable", "not-a-feed"


@dataclass(frozen=True)
class TrialRead:
    """What one read of a feed found: its title, its entries, and how many match each topic."""

    title: str = ""
    items: int = 0
    matching: dict[str, int] = field(default_factory=dict)  # topic -> entries matching it, topics in config order
    # Why the URL cannot be a feed, or None: BLOCKED (SSRF guard), UNREACHABLE, NOT_A_FEED.
    refused: str | None = None
    problem: str = ""  # one line for the person who asked (the URL without query or credentials)


async def read_once(url: str, settings: Settings, allow_private: bool, topics: list[str] | None) -> TrialRead:
    """Fetch and parse `url` once; count entries matching `topics` (None: every topic)."""
    fetcher = Fetcher(settings.fetch, allow_private=allow_private)
    try:
        result = await fetcher.fetch(url)
    finally:
        await fetcher.aclose()
    if not result.ok:
        return _refused_fetch(url, result)
    try:
        # Parsing is CPU work: off the event loop, which keeps answering other commands meanwhile.
        parsed = await asyncio.to_thread(parse_feed, result.body or b"", result.content_type,
                                         result.final_url or url)
    except FeedParseError as exc:
        return TrialRead(refused=NOT_A_FEED, problem=f"{redact_url(url)} is not a feed: {exc.reason}")
    matcher = TopicMatcher(settings)
    wanted = list(settings.topics) if topics is None else topics
    matching = {topic: 0 for topic in wanted}
    for entry in parsed.entries:
        for topic in matcher.match(entry.title + "\n" + entry.text, wanted):
            matching[topic] += 1
    return TrialRead(title=parsed.title, items=len(parsed.entries), matching=matching)


def _refused_fetch(url: str, result: FetchResult) -> TrialRead:
    if result.error_kind == "blocked-private":
        return TrialRead(refused=BLOCKED, problem=f"{redact_url(url)} was refused: it is on a private or local "
                                                  "network address, and only public feeds can be added")
    return TrialRead(refused=UNREACHABLE, problem=f"could not read {redact_url(url)}: "
                                                  f"{result.error or result.error_kind or 'fetch failed'}")
