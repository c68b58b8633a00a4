"""The shape of feeds.yaml: sections, durations and targets, validated by pydantic."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from bot.config.durations import Duration, duration
from bot.config.errors import short_repr, type_name
from bot.config.feed_url import MAX_URL_CHARS, feed_url_problem
from bot.models import Target

# Every text and number in the file has a size: a name shows in logs and chat replies, a keyword is
# matched against every item. The limits are far above any real configuration.
Name = Annotated[str, StringConstraints(pattern=r"^[\w.-]+$", max_length=64)]
TopicName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Phrase = Annotated[str, StringConstraints(max_length=200)]
Zone = Annotated[str, StringConstraints(max_length=64)]
Label = Annotated[str, StringConstraints(max_length=100)]
MAX_TARGET_CHARS = 2048

# Polling more often than every 30s is impolite to publishers.
PollInterval = duration(timedelta(seconds=30), timedelta(days=30))
Timeout = duration(timedelta(milliseconds=100), timedelta(hours=1))
Window = duration(longest=timedelta(days=31))
Grace = duration(longest=timedelta(days=7))

# A target is `kind:address`; the adapter that owns the kind validates the address. Loading passes
# the adapters' parser in the validation context (`parse_target`); without one a target is only split.
TargetParser = Callable[[str], Target]


def split_target(text: str) -> Target:
    kind, _, address = text.partition(":")
    return Target(kind, address)


def _validate_target(value: Any, info: ValidationInfo) -> Target:
    if isinstance(value, Target):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a target must be text like 'console' or 'KIND:ADDRESS', not {type_name(value)}")
    if not value.strip():
        raise ValueError("a target must be text like 'console' or 'KIND:ADDRESS', not blank")
    if len(value) > MAX_TARGET_CHARS:
        raise ValueError(f"target {short_repr(value)} is too long (at most {MAX_TARGET_CHARS:,} characters)")
    parse: TargetParser = (info.context or {}).get("parse_target") or split_target
    return parse(value.strip())


TargetField = Annotated[Target, BeforeValidator(_validate_target)]

# Who may change subscriptions and follows from chat: `PLATFORM:ID` (a user, user-group or role ID
# in the platform's own format). Loading passes the adapters' check in the validation context
# (`check_admin`: the adapter called PLATFORM checks the ID); without one only the form is checked.
_ADMIN_ID = re.compile(r"[a-z][a-z0-9-]{0,30}:[A-Za-z0-9_-]{1,64}")
AdminCheck = Callable[[str], str]


def _validate_admin(value: Any, info: ValidationInfo) -> str:
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _ADMIN_ID.fullmatch(text):
        raise ValueError(f"an admin is PLATFORM:ID, a user, user-group or role ID as the platform writes it "
                         f"(the README's `admins` row lists the forms), not {short_repr(value)}")
    check: AdminCheck | None = (info.context or {}).get("check_admin")
    return check(text) if check else text


AdminId = Annotated[str, BeforeValidator(_validate_admin)]



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)


class TopicConfig(_Strict):
    label: dict[Annotated[str, StringConstraints(max_length=16)], Label]
    keywords: list[Phrase] = Field(min_length=1)
    exclude: list[Phrase] = Field(default_factory=list)
    # Importance multiplier used by the digest ranking.
    weight: float = Field(default=1.0, gt=0, le=100)

    @field_validator("keywords", "exclude")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        cleaned = [str(v).strip() for v in values]
        if any(not v for v in cleaned):
            raise ValueError("keywords and exclude phrases must not be empty")
        return cleaned


class FeedConfig(_Strict):
    name: Name
    url: Annotated[str, StringConstraints(max_length=MAX_URL_CHARS)]
    every: PollInterval = timedelta(minutes=10)
    topics: list[TopicName] | None = None
    max_age: Duration | None = None
    enabled: bool = True
    max_new_per_poll: int | None = Field(default=None, ge=1, le=100_000)

    @field_validator("url")
    @classmethod
    def _fetchable_url(cls, value: str, info: ValidationInfo) -> str:
        problem = feed_url_problem(value)
        if problem:
            name = info.data.get("name")
            raise ValueError(f"feed {name!r}: {problem}" if name else problem)
        return value.strip()


def _follow_ups_mode(value: Any) -> Any:
    # YAML reads a bare `off` as false.
    return "off" if value is False else value


FollowUps = Annotated[Literal["thread", "off"], BeforeValidator(_follow_ups_mode)]


class RouteConfig(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    topics: list[TopicName] | None = None
    to: list[TargetField] = Field(min_length=1)
    max_posts_per_hour: int | None = Field(default=None, ge=1, le=100_000)
    # A later outlet of a posted story: a reply in the story's thread ("thread"), or nothing ("off").
    follow_ups: FollowUps = "thread"


class DigestConfig(_Strict):
    name: Name
    cron: Annotated[str, StringConstraints(max_length=100)]
    timezone: Zone = "UTC"
    topics: list[TopicName] | None = None
    to: list[TargetField] = Field(min_length=1)
    window: Window = timedelta(hours=24)
    max_items: int = Field(default=10, ge=1, le=50)
    skip_empty: bool = False
    # How late a missed digest may still be posted after a restart.
    grace: Grace = timedelta(hours=2)


AlertAfter = duration(timedelta(minutes=1), timedelta(days=30))


class AlertsConfig(_Strict):
    """Where alerts go when things break, and how long a feed may fail before it is one."""

    to: list[TargetField] = Field(min_length=1)
    after: AlertAfter = timedelta(hours=6)


class LLMConfig(_Strict):
    timeout: Timeout = timedelta(seconds=60)
    max_retries: int = Field(default=3, ge=0, le=10)
    requests_per_minute: int = Field(default=60, ge=1, le=1_000_000)
    daily_token_budget: int | None = Field(default=None, ge=1, le=10**12)
    max_input_tokens: int = Field(default=1800, ge=200, le=10_000_000)
    prompts_dir: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = "prompts"
    temperature: float = Field(default=0.1, ge=0, le=2)
    # USD per million tokens, only for the cost estimate shown by `briefbot stats` and the dashboard.
    price_input_per_mtok: float = Field(default=0.15, ge=0, le=10_000)
    price_output_per_mtok: float = Field(default=0.60, ge=0, le=10_000)
    # Fetch the article page when a feed item is only a stub shorter than this.
    fetch_article_below_chars: int = Field(default=400, ge=0, le=1_000_000)

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        """Estimated USD for that many tokens at the configured prices."""
        return ((prompt_tokens or 0) / 1e6 * self.price_input_per_mtok
                + (completion_tokens or 0) / 1e6 * self.price_output_per_mtok)


class FetchConfig(_Strict):
    timeout: Timeout = timedelta(seconds=20)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    # Fetches in flight at once. A poll mostly waits on publishers (100–800 ms per response): with 32 a
    # cold poll of 1,000 feeds at 300 ms per response was bound by waiting (1000 × 0.3 s / 32 ≈ 9.4 s),
    # not by CPU; per_host still limits what any one publisher sees.
    concurrency: int = Field(default=64, ge=1, le=4096)
    per_host: int = Field(default=4, ge=1, le=1024)
    max_redirects: int = Field(default=5, ge=0, le=30)
    user_agent: Annotated[str, StringConstraints(min_length=1, max_length=300)] = (
        "briefbot/0.1 (+https://github.com/briefbot/briefbot)")
    max_backoff: Duration = timedelta(hours=24)


class Settings(_Strict):
    languages: list[Literal["en", "zh"]] = Field(default_factory=lambda: ["en", "zh"], min_length=1)
    timezone: Zone = "UTC"
    max_age: Duration = timedelta(hours=24)
    # Flood guard: new briefs one feed may make in one poll (the rest are held and summarised in one
    # notice), and briefs posted to one target in any hour (the rest wait in the outbox).
    max_new_per_poll: int = Field(default=10, ge=1, le=100_000)
    max_posts_per_hour: int = Field(default=30, ge=1, le=100_000)
    topics: dict[TopicName, TopicConfig] = Field(min_length=1)
    feeds: list[FeedConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    digests: list[DigestConfig] = Field(default_factory=list)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    # Who may subscribe, unsubscribe, follow and unfollow from chat; empty: each platform's own
    # admins (see the adapters). Everyone may list.
    admins: list[AdminId] = Field(default_factory=list, max_length=1000)
    alerts: AlertsConfig | None = None

    # Set by load_config: where the file lives (prompts_dir and jsonl paths resolve against it).
    source_path: Path | None = Field(default=None, exclude=True)

    @property
    def polled_feeds(self) -> list[FeedConfig]:
        """The feeds briefbot polls: every configured feed not switched off with `enabled: false`."""
        return [f for f in self.feeds if f.enabled]

    def feed(self, name: str) -> FeedConfig | None:
        return next((f for f in self.feeds if f.name == name), None)

    def feed_topics(self, feed: FeedConfig) -> list[str]:
        return list(feed.topics) if feed.topics is not None else list(self.topics)

    def targets_for(self, topics: list[str]) -> list[Target]:
        """Targets of every route whose topics intersect `topics`, in route order, without repeats."""
        targets: list[Target] = []
        for route in self.routes:
            route_topics = route.topics if route.topics is not None else list(self.topics)
            if set(route_topics) & set(topics):
                targets.extend(t for t in route.to if t not in targets)
        return targets

    def follow_ups_for(self, target: Target, topics: list[str]) -> bool:
        """Whether a story of `topics` posted to `target` gets follow-ups: some route sending those
        topics there asks for them."""
        for route in self.routes:
            route_topics = route.topics if route.topics is not None else list(self.topics)
            if route.follow_ups == "thread" and target in route.to and set(route_topics) & set(topics):
                return True
        return False

    def new_per_poll(self, feed: FeedConfig) -> int:
        return feed.max_new_per_poll or self.max_new_per_poll

    def posts_per_hour(self, target: Target) -> int:
        """The tightest cap of the routes posting to `target`; the global one when none sets its own."""
        caps = [r.max_posts_per_hour for r in self.routes if r.max_posts_per_hour and target in r.to]
        return min(caps, default=self.max_posts_per_hour)

    def topic_label(self, topic: str, lang: str) -> str:
        cfg = self.topics.get(topic)
        return cfg.label.get(lang, topic) if cfg else topic

    @property
    def base_dir(self) -> Path:
        return self.source_path.parent if self.source_path else Path.cwd()

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def all_targets(self) -> list[Target]:
        seen: list[Target] = []
        alerts = list(self.alerts.to) if self.alerts else []
        for t in [t for r in self.routes for t in r.to] + [t for d in self.digests for t in d.to] + alerts:
            if t not in seen:
                seen.append(t)
        return seen
