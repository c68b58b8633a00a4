"""The one `/brief` grammar and its answers, shared by the CLI and every chat adapter.

Platform adapters parse nothing themselves beyond their wire format: they pass the command
text to `parse_command` and render the `QueryResult` they get back.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Literal

from bot.config import Settings
from bot.digest import build_digest
from bot.models import Brief, Digest, utcnow
from bot.store import FeedState, Store

DEFAULT_COUNT = 5
MAX_COUNT = 20
# Feed errors may quote a feed URL, and URLs may carry tokens: answers never show them.
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)


@dataclass(frozen=True)
class Verb:
    """One `/brief` verb: its name, its arguments and what it answers, in both languages."""

    name: str
    args: str
    en: str
    zh: str


VERBS = (
    Verb("latest", "<topic> [N]", "latest N briefs (default 5) for a topic", "最新简报"),
    Verb("digest", "", "the digest of the last 24 h, now", "过去24小时摘要"),
    Verb("feeds", "", "feed health", "订阅源状态"),
    Verb("search", "<words>", "briefs matching words, English or Chinese", "搜索简报"),
)


def hide_urls(text: str | None) -> str | None:
    return _URL_RE.sub("[url hidden]", text) if text else text


@dataclass
class Command:
    """A parsed `/brief ...` command."""

    action: Literal["help", "latest", "digest", "feeds", "search", "unknown-topic"]
    topic: str | None = None
    count: int = DEFAULT_COUNT
    words: list[str] = field(default_factory=list)
    public: bool = False
    suggestions: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class FeedHealth:
    name: str
    status: str
    last_fetch: datetime | None
    last_success: datetime | None
    failures: int
    last_error: str | None
    next_attempt: datetime | None
    items: int
    disabled_reason: str | None


@dataclass
class QueryResult:
    command: Command
    briefs: list[Brief] = field(default_factory=list)
    digest: Digest | None = None
    feeds: list[FeedHealth] = field(default_factory=list)


class CommandService:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store

    # ----------------------------------------------------------------- parsing
    @property
    def topics(self) -> list[str]:
        return list(self.settings.topics)

    def resolve_topic(self, text: str) -> tuple[str | None, list[str]]:
        """Exact topic, a label in any language, or None with fuzzy suggestions."""
        wanted = text.strip().lower()
        for name, cfg in self.settings.topics.items():
            if wanted == name.lower() or wanted in (v.lower() for v in cfg.label.values()):
                return name, []
        candidates = {name.lower(): name for name in self.topics}
        for name, cfg in self.settings.topics.items():
            for label in cfg.label.values():
                candidates[label.lower()] = name
        close = difflib.get_close_matches(wanted, list(candidates), n=3, cutoff=0.5)
        suggestions: list[str] = []
        for c in close:
            if candidates[c] not in suggestions:
                suggestions.append(candidates[c])
        return None, suggestions

    def parse_command(self, text: str) -> Command:
        words = (text or "").split()
        public = False
        if words and words[-1].lower() == "public":
            public, words = True, words[:-1]
        if not words or words[0].lower() in ("help", "-h", "--help", "?"):
            return Command("help", public=public)
        head = words[0].lower()
        if head == "digest":
            return Command("digest", public=public)
        if head == "feeds":
            return Command("feeds", public=public)
        if head == "search":
            if len(words) < 2:
                return Command("help", public=public, error="search needs words, e.g. `/brief search gallium`")
            return Command("search", words=words[1:], public=public)
        count = DEFAULT_COUNT
        if len(words) >= 2 and words[-1].isdigit():
            count = max(1, min(MAX_COUNT, int(words[-1])))
            words = words[:-1]
        topic, suggestions = self.resolve_topic(" ".join(words))
        if topic is None:
            hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
            return Command("unknown-topic", topic=" ".join(words), public=False, suggestions=suggestions,
                           error=f"Unknown topic '{' '.join(words)}'.{hint} Topics: {', '.join(self.topics)}")
        return Command("latest", topic=topic, count=count, public=public)

    # ----------------------------------------------------------------- answers
    def latest(self, topic: str, count: int = DEFAULT_COUNT) -> list[Brief]:
        return self.store.latest_briefs(topic, max(1, min(MAX_COUNT, count)))

    def search(self, words: list[str], count: int = DEFAULT_COUNT) -> list[Brief]:
        return self.store.search_briefs(words, max(1, min(MAX_COUNT, count)))

    def feeds_health(self) -> list[FeedHealth]:
        configured = {f.name for f in self.settings.feeds}
        out = []
        for s in self.store.feed_states():
            if s.name not in configured:
                continue
            out.append(_health(s))
        return out

    def digest_now(self, window: timedelta = timedelta(hours=24), now: datetime | None = None) -> Digest:
        return build_digest(self.settings, self.store, None, now=now or utcnow(), window=window)

    def answer(self, command: Command) -> QueryResult:
        result = QueryResult(command=command)
        if command.action == "latest":
            result.briefs = self.latest(command.topic or "", command.count)
        elif command.action == "search":
            result.briefs = self.search(command.words, command.count)
        elif command.action == "feeds":
            result.feeds = self.feeds_health()
        elif command.action == "digest":
            result.digest = self.digest_now()
        return result

    def run(self, text: str) -> QueryResult:
        return self.answer(self.parse_command(text))


def help_text(settings: Settings, usage: Callable[[Verb], str], bold: Callable[[str], str], share_hint: str) -> str:
    """The help answer, in the platform's syntax (`usage`) and markup (`bold`)."""
    topics = ", ".join(f"`{n}` ({c.label.get('en', n)} / {c.label.get('zh', n)})" for n, c in settings.topics.items())
    lines = [f"{bold('briefbot')} — bilingual rare-earth and tariff briefs · 稀土与关税双语简报"]
    lines += [f"• `{usage(verb)}` — {verb.en} · {verb.zh}" for verb in VERBS]
    lines += [share_hint, f"Topics: {topics}"]
    return "\n".join(lines)


def _health(s: FeedState) -> FeedHealth:
    # Only states, never URLs: webhook/feed URLs may carry tokens.
    status = "disabled" if s.disabled_reason else (s.last_status or "never polled")
    return FeedHealth(name=s.name, status=status,
                      last_fetch=s.last_fetch_at, last_success=s.last_success_at, failures=s.failures,
                      last_error=hide_urls(s.last_error), next_attempt=s.next_poll_at, items=s.items_total,
                      disabled_reason=hide_urls(s.disabled_reason))
