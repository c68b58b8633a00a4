"""The shape of feeds.yaml: sections, durations and targets, validated by pydantic."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Callable, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from bot.models import Target


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w)?\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600,
                 "hrs": 3600, "d": 86400, "day": 86400, "days": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """"30s", "10m", "2h", "1d" or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 10m, 2h, 1d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration for log lines: 90s, 10m, 24h, 2d."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"



# A target is `kind:address`; the adapter that owns the kind validates the address. Loading passes
# the adapters' parser in the validation context (`parse_target`); without one a target is only split.
TargetParser = Callable[[str], Target]


def split_target(text: str) -> Target:
    kind, _, address = text.partition(":")
    return Target(kind, address)


def _validate_target(value: Any, info: ValidationInfo) -> Target:
    if isinstance(value, Target):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"target {value!r} must be a string like 'console' or 'KIND:ADDRESS'")
    parse: TargetParser = (info.context or {}).get("parse_target") or split_target
    return parse(value.strip())


TargetField = Annotated[Target, BeforeValidator(_validate_target)]



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class TopicConfig(_Strict):
    label: dict[str, str]
    keywords: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    # Importance multiplier used by the digest ranking.
    weight: float = Field(default=1.0, gt=0)

    @field_validator("keywords", "exclude")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        cleaned = [str(v).strip() for v in values]
        if any(not v for v in cleaned):
            raise ValueError("keywords and exclude phrases must not be empty")
        return cleaned


class FeedConfig(_Strict):
    name: str = Field(pattern=r"^[\w.-]+$")
    url: str
    every: Duration = timedelta(minutes=10)
    topics: list[str] | None = None
    max_age: Duration | None = None
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"feed url {value!r} must be an http(s) URL")
        return value

    @field_validator("every")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=30):
            raise ValueError("poll interval must be at least 30s (be polite to publishers)")
        return value


class RouteConfig(_Strict):
    name: str
    topics: list[str] | None = None
    to: list[TargetField] = Field(min_length=1)


class DigestConfig(_Strict):
    name: str = Field(pattern=r"^[\w.-]+$")
    cron: str
    timezone: str = "UTC"
    topics: list[str] | None = None
    to: list[TargetField] = Field(min_length=1)
    window: Duration = timedelta(hours=24)
    max_items: int = Field(default=10, ge=1, le=50)
    skip_empty: bool = False
    # How late a missed digest may still be posted after a restart.
    grace: Duration = timedelta(hours=2)


class LLMConfig(_Strict):
    timeout: Duration = timedelta(seconds=60)
    max_retries: int = Field(default=3, ge=0, le=10)
    requests_per_minute: int = Field(default=60, ge=1)
    daily_token_budget: int | None = Field(default=None, ge=1)
    max_input_tokens: int = Field(default=1800, ge=200)
    prompts_dir: str = "prompts"
    temperature: float = Field(default=0.1, ge=0, le=2)
    # USD per million tokens, only for the cost estimate shown by `briefbot stats`.
    price_input_per_mtok: float = Field(default=0.15, ge=0)
    price_output_per_mtok: float = Field(default=0.60, ge=0)
    # Fetch the article page when a feed item is only a stub shorter than this.
    fetch_article_below_chars: int = Field(default=400, ge=0)


class FetchConfig(_Strict):
    timeout: Duration = timedelta(seconds=20)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Fetches in flight at once. A poll mostly waits on publishers (100–800 ms per response): with 32 a
    # cold poll of 1,000 feeds at 300 ms per response was bound by waiting (1000 × 0.3 s / 32 ≈ 9.4 s),
    # not by CPU; per_host still limits what any one publisher sees.
    concurrency: int = Field(default=64, ge=1)
    per_host: int = Field(default=4, ge=1)
    max_redirects: int = Field(default=5, ge=0)
    user_agent: str = "briefbot/0.1 (+https://github.com/briefbot/briefbot)"
    max_backoff: Duration = timedelta(hours=24)


class Settings(_Strict):
    languages: list[Literal["en", "zh"]] = Field(default_factory=lambda: ["en", "zh"], min_length=1)
    timezone: str = "UTC"
    max_age: Duration = timedelta(hours=24)
    topics: dict[str, TopicConfig] = Field(min_length=1)
    feeds: list[FeedConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    digests: list[DigestConfig] = Field(default_factory=list)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    fetch: FetchConfig = Field(default_factory=FetchConfig)

    # Set by load_config: where the file lives (prompts_dir and jsonl paths resolve against it).
    source_path: Path | None = Field(default=None, exclude=True)

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
        for t in [t for r in self.routes for t in r.to] + [t for d in self.digests for t in d.to]:
            if t not in seen:
                seen.append(t)
        return seen
