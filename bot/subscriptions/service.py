"""Subscriptions and follows: the one API that chat adapters, the CLI and the dashboard call.

Platform-neutral: a target is a `Target` the caller validated (`KIND:CHANNEL`, as in feeds.yaml),
an actor is a free-text label recorded with the change (`KIND:USER`, `cli:alice`), and every
answer is a dataclass with a one-line `message` for the person who asked. Who may change things
is the caller's business (the adapters own their platform's admin checks).

A subscription is a feed polled like a feeds.yaml feed; a follow routes a topic's new briefs to a
target as a feeds.yaml route does. feeds.yaml stays the baseline: its feeds and routes are listed
("from feeds.yaml") but cannot be removed from here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import urlsplit

from bot.config import FeedConfig, Settings
from bot.config.feed_url import feed_url_problem
from bot.ingest.urls import hide_urls, redact_url
from bot.models import Target
from bot.store import Store
from bot.subscriptions.merge import is_chat_route, read_chat_feeds
from bot.subscriptions.trial import TrialRead, read_once

FROM_FILE, FROM_CHAT = "feeds.yaml", "chat"
# FeedStatus.status of a chat-made feed the merge leaves out (its problem says why).
NOT_POLLED = "not polled"

# Change.code values.
SUBSCRIBED, UNSUBSCRIBED, FOLLOWED, UNFOLLOWED = "subscribed", "unsubscribed", "followed", "unfollowed"
ALREADY, NOT_FOUND, IN_FILE, UNKNOWN_TOPIC, INVALID = "already", "not-found", "in-feeds.yaml", "unknown-topic", "invalid"

_NAME_CHARS = re.compile(r"[^\w.-]+", re.ASCII)
MAX_NAME = 48


@dataclass(frozen=True)
class Change:
    """The answer to subscribe/unsubscribe/follow/unfollow. `code` is SUBSCRIBED, …, or why not
    (ALREADY, NOT_FOUND, IN_FILE, UNKNOWN_TOPIC, INVALID, or the trial's BLOCKED, UNREACHABLE,
    NOT_A_FEED); `ok` is True when the wanted state now holds."""

    ok: bool
    code: str
    message: str
    feed: str | None = None  # the feed's name (subscribe, unsubscribe)
    topics: tuple[str, ...] = ()  # topics now followed by the target (subscribe, follow)
    trial: TrialRead | None = None  # what reading the feed once found (subscribe)


@dataclass(frozen=True)
class FeedStatus:
    """One feed with where it comes from and its health; never its URL (it may carry a key)."""

    name: str
    origin: str  # FROM_FILE or FROM_CHAT
    topics: tuple[str, ...]  # the topics it may produce
    status: str  # "never polled", "disabled", "not polled", or the last poll's outcome ("ok", "error:http", …)
    failures: int = 0
    items: int = 0
    last_success: datetime | None = None
    problem: str | None = None  # why it is disabled, or its last error, URLs hidden
    created_by: str | None = None  # chat-made: who added it

    @property
    def stopped(self) -> bool:
        """Not polled at all: switched off, or a chat-made feed the merge leaves out."""
        return self.status in ("disabled", NOT_POLLED)


@dataclass(frozen=True)
class Follow:
    topic: str
    target: str  # as it may be shown (a webhook's token hidden)
    origin: str  # FROM_FILE or FROM_CHAT
    source: str  # the feeds.yaml route's name, or who followed it


@dataclass(frozen=True)
class Listing:
    """A target's follows and the feeds behind them (every follow and feed when no target is given)."""

    target: str | None
    follows: tuple[Follow, ...]
    feeds: tuple[FeedStatus, ...]


class SubscriptionService:
    """`baseline()` is feeds.yaml as loaded (re-read on reload); `on_change()` tells the running bot
    to re-merge its settings now rather than at its next check."""

    def __init__(self, baseline: Callable[[], Settings], store: Store, *, allow_private: bool = False,
                 on_change: Callable[[], None] | None = None):
        self.baseline = baseline
        self.store = store
        self.allow_private = allow_private
        self.on_change = on_change

    # ----------------------------------------------------------------- topics
    def resolve_topic(self, text: str) -> str | None:
        """A topic by name or by a label in any language."""
        wanted = text.strip().lower()
        for name, cfg in self.baseline().topics.items():
            if wanted == name.lower() or wanted in (v.lower() for v in cfg.label.values()):
                return name
        return None

    def _topics(self, words: list[str]) -> tuple[list[str], Change | None]:
        resolved, unknown = [], []
        for word in words:
            topic = self.resolve_topic(word)
            (resolved if topic else unknown).append(topic or word)
        if unknown:
            known = ", ".join(self.baseline().topics)
            return [], Change(False, UNKNOWN_TOPIC, f"Unknown topic {', '.join(unknown)}. Topics: {known}.")
        return list(dict.fromkeys(resolved)), None

    # ----------------------------------------------------------------- subscriptions
    async def subscribe(self, url: str, topics: list[str], target: Target, actor: str) -> Change:
        """Read `url` once; if it is a feed, poll it from now on for `topics` (none given: every
        topic) and have `target` follow those topics."""
        url = _unwrap(url)
        problem = feed_url_problem(url)
        if problem:
            return Change(False, INVALID, f"Not a feed URL: {problem}.")
        wanted, refusal = self._topics(topics)
        if refusal:
            return refusal
        settings = self.baseline()
        existing = self._feed_with_url(url)
        if existing is not None:
            followed = self._follow_all(wanted or settings.feed_topics(existing[0]), target, actor)
            self._changed()
            return Change(True, ALREADY, f"{existing[0].name} ({existing[1]}) already reads that feed; "
                                         f"{_follow_phrase(followed)}.", feed=existing[0].name, topics=followed)
        trial = await read_once(url, settings, self.allow_private, wanted or None)
        if trial.refused:
            return Change(False, trial.refused, trial.problem, trial=trial)
        name = self._new_name(url)
        if not self.store.add_subscription(name, url, wanted or None, str(target), actor):
            return Change(False, ALREADY, f"A subscription named {name} was added at the same moment; try again.")
        followed = self._follow_all(wanted or list(settings.topics), target, actor)
        self._changed()
        return Change(True, SUBSCRIBED, f"Subscribed to {name}: {_found(trial)}; new matching items will be posted "
                                        "here.", feed=name, topics=followed, trial=trial)

    def unsubscribe(self, name_or_url: str, actor: str) -> Change:
        wanted = _unwrap(name_or_url)
        for feed in self.baseline().feeds:
            if wanted in (feed.name, feed.url):
                return Change(False, IN_FILE, f"{feed.name} is from feeds.yaml; an operator removes it there.",
                              feed=feed.name)
        row = next((r for r in self.store.subscriptions() if wanted in (r.name, r.url)), None)
        if row is None or not self.store.remove_subscription(row.name):
            return Change(False, NOT_FOUND, f"No subscription {_hide(wanted)}; `/brief list` shows them.")
        self._changed()
        return Change(True, UNSUBSCRIBED, f"Unsubscribed from {row.name}; it is no longer polled.", feed=row.name)

    # ----------------------------------------------------------------- follows
    def follow(self, topic: str, target: Target, actor: str) -> Change:
        wanted, refusal = self._topics([topic])
        if refusal:
            return refusal
        route = self._file_route(wanted[0], target)
        if route is not None:
            return Change(True, ALREADY, f"{wanted[0]} is already posted here (route {route} in feeds.yaml).",
                          topics=(wanted[0],))
        if not self.store.add_follow(wanted[0], str(target), actor):
            return Change(True, ALREADY, f"This channel already follows {wanted[0]}.", topics=(wanted[0],))
        self._changed()
        return Change(True, FOLLOWED, f"Following {wanted[0]}: its new briefs will be posted here.",
                      topics=(wanted[0],))

    def unfollow(self, topic: str, target: Target, actor: str) -> Change:
        wanted, refusal = self._topics([topic])
        if refusal:
            return refusal
        route = self._file_route(wanted[0], target)
        if route is not None:
            return Change(False, IN_FILE, f"{wanted[0]} is posted here by route {route} in feeds.yaml; "
                                          "an operator changes it there.")
        if not self.store.remove_follow(wanted[0], str(target)):
            return Change(False, NOT_FOUND, f"This channel does not follow {wanted[0]}.")
        self._changed()
        return Change(True, UNFOLLOWED, f"Unfollowed {wanted[0]}: its briefs are no longer posted here.")

    # ----------------------------------------------------------------- reading
    def listing(self, target: Target | None = None) -> Listing:
        """`target`'s follows (from feeds.yaml routes and from chat) and the feeds producing those
        topics, with their health; everything when `target` is None."""
        settings = self.baseline()
        follows = [Follow(topic, t.redacted, FROM_FILE, route.name)
                   for route in settings.routes if not is_chat_route(route.name)
                   for t in route.to if target is None or t == target
                   for topic in (route.topics if route.topics is not None else list(settings.topics))]
        follows += [Follow(row.topic, _shown_target(row.target, settings), FROM_CHAT, row.created_by)
                    for row in self.store.follows(None if target is None else str(target))]
        topics = {f.topic for f in follows}
        feeds = [f for f in self.feeds() if target is None or topics & set(f.topics)]
        return Listing(None if target is None else target.redacted, tuple(follows), tuple(feeds))

    def feeds(self) -> list[FeedStatus]:
        """Every feed, feeds.yaml's first, then the chat-made ones, with health; a chat-made feed
        that is not polled says why."""
        settings = self.baseline()
        states = {s.name: s for s in self.store.feed_states()}
        out = [_status(f.name, FROM_FILE, settings.feed_topics(f), states.get(f.name)) for f in settings.feeds]
        rows = tuple(self.store.subscriptions())
        polled, left_out = read_chat_feeds(settings, rows)
        polled_by_name = {f.name: f for f in polled}
        for row in rows:
            if row.name in polled_by_name:
                out.append(_status(row.name, FROM_CHAT, settings.feed_topics(polled_by_name[row.name]),
                                   states.get(row.name), row.created_by))
            elif row.name in left_out:
                out.append(FeedStatus(row.name, FROM_CHAT, tuple(row.topics or ()), NOT_POLLED,
                                      problem=hide_urls(left_out[row.name]), created_by=row.created_by))
        return out

    def chat_feed_names(self) -> set[str]:
        return {row.name for row in self.store.subscriptions()}

    # ----------------------------------------------------------------- helpers
    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _feed_with_url(self, url: str) -> tuple[FeedConfig, str] | None:
        settings = self.baseline()
        for feed in settings.feeds:
            if feed.url == url:
                return feed, f"from {FROM_FILE}"
        for row in self.store.subscriptions():
            if row.url == url:
                topics = list(row.topics) if row.topics is not None else None
                return FeedConfig(name=row.name, url=row.url, topics=topics), f"added by {row.created_by}"
        return None

    def _file_route(self, topic: str, target: Target) -> str | None:
        for route in self.baseline().routes:
            if target in route.to and (route.topics is None or topic in route.topics):
                return route.name
        return None

    def _follow_all(self, topics: list[str], target: Target, actor: str) -> tuple[str, ...]:
        for topic in topics:
            if self._file_route(topic, target) is None:
                self.store.add_follow(topic, str(target), actor)
        return tuple(topics)

    def _new_name(self, url: str) -> str:
        """A readable, unused feed name from the URL's host and path (`example.com-news-rss`)."""
        parts = urlsplit(url)
        host = (parts.hostname or "feed").removeprefix("www.")
        path = "-".join(p for p in parts.path.split("/") if p)
        base = _NAME_CHARS.sub("-", f"{host}-{path}" if path else host).strip("-.")[:MAX_NAME] or "feed"
        taken = {f.name for f in self.baseline().feeds} | self.chat_feed_names()
        taken |= {s.name for s in self.store.feed_states()}  # a removed feed's items stay under its name
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return name


def _unwrap(text: str) -> str:
    """A URL as typed; chat clients may send it as `<url>` or `<url|label>`."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].partition("|")[0]
    return text.strip()


def _found(trial: TrialRead) -> str:
    text = f"{trial.items} item{'s' * (trial.items != 1)}"
    matching = [f"{count} match *{topic}*" for topic, count in trial.matching.items() if count]
    return f"{text}, {', '.join(matching)}" if matching else f"{text}, none matching its topics yet"


def _follow_phrase(topics: tuple[str, ...]) -> str:
    return f"this channel follows {', '.join(topics)}" if topics else "nothing more to follow"


def _hide(text: str) -> str:
    return redact_url(text) if "://" in text else text


def _shown_target(text: str, settings: Settings) -> str:
    for target in settings.all_targets():
        if str(target) == text:
            return target.redacted
    return hide_urls(text)


def _status(name: str, origin: str, topics: list[str], state, created_by: str | None = None) -> FeedStatus:
    if state is None:
        return FeedStatus(name, origin, tuple(topics), "never polled", created_by=created_by)
    problem = state.disabled_reason or state.last_error
    return FeedStatus(name, origin, tuple(topics),
                      "disabled" if state.disabled_reason else (state.last_status or "never polled"),
                      failures=state.failures, items=state.items_total, last_success=state.last_success_at,
                      problem=hide_urls(problem), created_by=created_by)
