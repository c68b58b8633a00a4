"""The settings the bot runs on: feeds.yaml (the operator's baseline) plus the feeds and follows
made from chat or the CLI.

Chat-made feeds join `feeds` and follows join `routes`, so everything that reads settings (the
poller and its feed claims, the scheduler, the routing of briefs to targets, `briefbot feeds`) sees
them without knowing where they came from. The file wins a clash: a chat-made feed whose name or
URL the file also has is left out, and topics the file no longer defines are dropped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from pydantic import ValidationError

from bot.config import FeedConfig, RouteConfig, Settings
from bot.models import Target
from bot.store import FollowRow, Store, SubscriptionRow

log = logging.getLogger("briefbot.subscriptions")

ROUTE_PREFIX = "chat-follows-"


@dataclass(frozen=True)
class ChatConfig:
    """What the database adds to feeds.yaml; equal snapshots merge to equal settings."""

    subscriptions: tuple[SubscriptionRow, ...] = ()
    follows: tuple[FollowRow, ...] = ()

    @classmethod
    def load(cls, store: Store) -> ChatConfig:
        return cls(tuple(store.subscriptions()), tuple(store.follows()))


def chat_feeds(baseline: Settings, rows: tuple[SubscriptionRow, ...]) -> list[FeedConfig]:
    """The chat-made feeds that are polled beside feeds.yaml's; each one left out is logged."""
    feeds, left_out = read_chat_feeds(baseline, rows)
    for name, reason in left_out.items():
        log.warning("subscription %s is not polled: %s", name, reason)
    return feeds


def read_chat_feeds(baseline: Settings, rows: tuple[SubscriptionRow, ...]
                    ) -> tuple[list[FeedConfig], dict[str, str]]:
    """The chat-made feeds polled beside feeds.yaml's, and why each other row is not polled (by
    name). A row the file has itself (same name or URL) is neither: the operator's entry is polled."""
    names = {f.name for f in baseline.feeds}
    urls = {f.url for f in baseline.feeds}
    feeds, left_out = [], {}
    for row in rows:
        if row.name in names or row.url in urls:
            continue
        topics = None if row.topics is None else [t for t in row.topics if t in baseline.topics]
        if topics == []:
            left_out[row.name] = f"feeds.yaml no longer defines its topics {', '.join(row.topics or ())}"
            continue
        try:
            feeds.append(FeedConfig(name=row.name, url=row.url, topics=topics))
        except ValidationError as exc:
            left_out[row.name] = exc.errors()[0].get("msg", "invalid")
    return feeds, left_out


def chat_routes(baseline: Settings, rows: tuple[FollowRow, ...],
                parse_target: Callable[[str], Target]) -> list[RouteConfig]:
    """One route per following target, carrying every topic it follows."""
    by_target: dict[str, list[str]] = {}
    for row in rows:
        if row.topic in baseline.topics:
            by_target.setdefault(row.target, []).append(row.topic)
    routes = []
    for i, (text, topics) in enumerate(sorted(by_target.items()), start=1):
        try:
            target = parse_target(text)
        except ValueError as exc:
            log.warning("follows of %s are not applied: %s", text, exc)
            continue
        routes.append(RouteConfig(name=f"{ROUTE_PREFIX}{i}", topics=topics, to=[target]))
    return routes


def merge(baseline: Settings, chat: ChatConfig, parse_target: Callable[[str], Target]) -> Settings:
    """feeds.yaml with the chat-made feeds and follows added."""
    if not chat.subscriptions and not chat.follows:
        return baseline
    merged = baseline.model_copy(update={
        "feeds": list(baseline.feeds) + chat_feeds(baseline, chat.subscriptions),
        "routes": list(baseline.routes) + chat_routes(baseline, chat.follows, parse_target),
    })
    merged.source_path = baseline.source_path
    return merged


def is_chat_route(name: str) -> bool:
    return name.startswith(ROUTE_PREFIX)
