"""The one `/brief` grammar and its answers, shared by the CLI and every chat adapter.

Platform adapters parse nothing themselves beyond their wire format: they pass the command
text to `parse_command` and render the `QueryResult` they get back.
"""

from __future__ import annotations

import asyncio
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Literal

from bot.config import Settings
from bot.digest import build_digest
from bot.ingest.urls import hide_urls
from bot.models import Brief, Digest, Target, utcnow
from bot.store import FeedState, Store
from bot.subscriptions import Change, Listing, SubscriptionService

DEFAULT_COUNT = 5
MAX_COUNT = 20
# Bounds on what one command may ask: each search word is one LIKE condition, so these also keep
# every query small (SQLite refuses an expression tree of ~1,000 terms or a pattern of 50,000 bytes).
MAX_WORDS = 20
MAX_WORD_CHARS = 100
# A count is ASCII digits with an optional sign; any other digits are a topic word.
_NUMBER_RE = re.compile(r"[+-]?[0-9]+")
# Tab and line breaks separate words; every other control character (NUL, escapes, C1) and a lone
# surrogate (undecodable bytes in argv) is refused.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


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
    Verb("list", "", "this channel's follows and the feeds behind them", "本频道关注的主题与订阅源"),
    Verb("subscribe", "<url> [topic…]", "add a feed; its matching items are posted here (admins)", "添加订阅源（管理员）"),
    Verb("unsubscribe", "<name|url>", "remove a feed added from chat (admins)", "移除订阅源（管理员）"),
    Verb("follow", "<topic>", "post a topic's briefs here (admins)", "在本频道接收某主题简报（管理员）"),
    Verb("unfollow", "<topic>", "stop posting a topic's briefs here (admins)", "停止接收某主题简报（管理员）"),
)
# Verbs that change what is polled or where briefs go: the adapters let only admins use them.
CHANGES = ("subscribe", "unsubscribe", "follow", "unfollow")


class UsageError(ValueError):
    """A command the grammar refuses; the message says what is wrong and what is allowed."""


def check_words(words: list[str]) -> list[str]:
    """The words, or UsageError when there are too many, one is too long, or one holds a control
    character or undecodable bytes."""
    for word in words:
        if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in _ALLOWED_CONTROLS for ch in word):
            raise UsageError("the command contains a control character or undecodable bytes; type plain words")
    if len(words) > MAX_WORDS:
        raise UsageError(f"at most {MAX_WORDS} words, got {len(words)}")
    longest = max((len(w) for w in words), default=0)
    if longest > MAX_WORD_CHARS:
        raise UsageError(f"a word may have at most {MAX_WORD_CHARS} characters, got one of {longest}")
    return words


def check_count(value: int | str, name: str = "N") -> int:
    """A count of briefs from 1 to MAX_COUNT, or UsageError naming the range."""
    text = str(value).strip()
    # Bounded before int(): a 5,000-digit number is out of range, not an interpreter limit.
    if not _NUMBER_RE.fullmatch(text) or len(text) > 6 or not 1 <= int(text) <= MAX_COUNT:
        raise UsageError(f"{name + ' ' if name else ''}must be a whole number from 1 to {MAX_COUNT}, "
                         f"got {_clip(text)}")
    return int(text)


def _clip(text: str, limit: int = 12) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


_VERBS_WITHOUT_COUNT = ("search", "digest", "feeds", "list", "help", "-h", "--help", "?") + CHANGES


@dataclass
class Command:
    """A parsed `/brief ...` command."""

    action: Literal["help", "latest", "digest", "feeds", "search", "unknown-topic", "list", "subscribe",
                    "unsubscribe", "follow", "unfollow"]
    topic: str | None = None
    count: int = DEFAULT_COUNT
    words: list[str] = field(default_factory=list)
    public: bool = False
    suggestions: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def changes(self) -> bool:
        """True for the verbs only admins may use."""
        return self.action in CHANGES


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
    # Held back by the flood guard: items stored without briefs, and briefs waiting for a target's hourly cap.
    held: int = 0
    origin: str = "feeds.yaml"  # or "chat": added with `/brief subscribe` or `briefbot subscribe`


@dataclass
class QueryResult:
    command: Command
    briefs: list[Brief] = field(default_factory=list)
    digest: Digest | None = None
    feeds: list[FeedHealth] = field(default_factory=list)
    change: Change | None = None  # subscribe, unsubscribe, follow, unfollow
    listing: Listing | None = None  # list


class CommandService:
    def __init__(self, settings: Settings, store: Store, subscriptions: SubscriptionService | None = None):
        self.settings = settings
        self.store = store
        self.subscriptions = subscriptions or SubscriptionService(lambda: settings, store)

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
        """The command `text` asks for; a command the grammar refuses is help with the reason, privately."""
        try:
            return self._parse((text or "").split())
        except UsageError as exc:
            return Command("help", error=f"{exc}.")

    def _parse(self, words: list[str]) -> Command:
        public = bool(words) and words[-1].lower() == "public"
        words = words[:-1] if public else words
        head = words[0].lower() if words else "help"
        takes_count = head not in _VERBS_WITHOUT_COUNT and len(words) >= 2 and _NUMBER_RE.fullmatch(words[-1])
        # Before the word checks, so an out-of-range count is named as one even when it is also too long.
        count = check_count(words[-1], "the count") if takes_count else DEFAULT_COUNT
        # A feed URL may be longer than a word; the subscription service checks it as a feed URL.
        check_words(words[1:] if head == "search" else words[:1] + words[2:] if head in _URL_VERBS else words)
        if head in ("help", "-h", "--help", "?"):
            return Command("help", public=public)
        if head == "digest":
            return Command("digest", public=public)
        if head == "feeds":
            return Command("feeds", public=public)
        if head == "list":
            return Command("list", public=public)
        if head in CHANGES:
            return _change_command(head, words[1:], public)
        if head == "search":
            if len(words) < 2:
                return Command("help", public=public, error="search needs words, e.g. `/brief search gallium`")
            return Command("search", words=words[1:], public=public)
        if takes_count:
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
        """Briefs matching every word (UsageError for words the grammar refuses)."""
        return self.store.search_briefs(check_words(words), max(1, min(MAX_COUNT, count)))

    def feeds_health(self) -> list[FeedHealth]:
        configured = {f.name for f in self.settings.feeds}
        held = self.store.held_counts()
        chat = self.subscriptions.chat_feed_names()
        out = []
        for s in self.store.feed_states():
            if s.name not in configured:
                continue
            out.append(_health(s, held.get(s.name, 0), "chat" if s.name in chat else "feeds.yaml"))
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

    async def answer_for(self, command: Command, target: Target | None, actor: str) -> QueryResult:
        """The answer to `command` given in `target` (a chat channel; None from the shell) by
        `actor`. Whether the actor may change things is the caller's check."""
        subs = self.subscriptions
        if command.action in ("subscribe", "follow", "unfollow") and target is None:
            return QueryResult(Command("help", error=f"{command.action} needs a channel to post to."))
        if command.action == "subscribe":
            return QueryResult(command, change=await subs.subscribe(command.words[0], command.words[1:], target, actor))
        if command.action == "unsubscribe":
            return QueryResult(command, change=await asyncio.to_thread(subs.unsubscribe, command.words[0], actor))
        if command.action in ("follow", "unfollow"):
            act = subs.follow if command.action == "follow" else subs.unfollow
            return QueryResult(command, change=await asyncio.to_thread(act, command.topic or "", target, actor))
        if command.action == "list":
            return QueryResult(command, listing=await asyncio.to_thread(subs.listing, target))
        # The store is synchronous; keep the event loop responsive.
        return await asyncio.to_thread(self.answer, command)


_URL_VERBS = ("subscribe", "unsubscribe")
_CHANGE_USAGE = {"subscribe": "`/brief subscribe <feed URL> [topic…]`", "unsubscribe": "`/brief unsubscribe <name or URL>`",
                 "follow": "`/brief follow <topic>`", "unfollow": "`/brief unfollow <topic>`"}


def _change_command(verb: str, args: list[str], public: bool) -> Command:
    if not args or (verb == "unsubscribe" and len(args) != 1):
        return Command("help", error=f"usage: {_CHANGE_USAGE[verb]}")
    if verb in ("follow", "unfollow"):
        return Command(verb, topic=" ".join(args), public=public)
    return Command(verb, words=list(args), public=public)


def help_text(settings: Settings, usage: Callable[[Verb], str], bold: Callable[[str], str], share_hint: str) -> str:
    """The help answer, in the platform's syntax (`usage`) and markup (`bold`)."""
    topics = ", ".join(f"`{n}` ({c.label.get('en', n)} / {c.label.get('zh', n)})" for n, c in settings.topics.items())
    lines = [f"{bold('briefbot')} — bilingual rare-earth and tariff briefs · 稀土与关税双语简报"]
    lines += [f"• `{usage(verb)}` — {verb.en} · {verb.zh}" for verb in VERBS]
    lines += [share_hint, f"Topics: {topics}"]
    return "\n".join(lines)


def _health(s: FeedState, held: int = 0, origin: str = "feeds.yaml") -> FeedHealth:
    # Only states, never URLs: webhook/feed URLs may carry tokens.
    status = "disabled" if s.disabled_reason else (s.last_status or "never polled")
    return FeedHealth(name=s.name, status=status,
                      last_fetch=s.last_fetch_at, last_success=s.last_success_at, failures=s.failures,
                      last_error=hide_urls(s.last_error), next_attempt=s.next_poll_at, items=s.items_total,
                      disabled_reason=hide_urls(s.disabled_reason), held=held, origin=origin)
