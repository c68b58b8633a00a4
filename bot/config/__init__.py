"""feeds.yaml and environment settings.

Errors name the file, the YAML line and the field, so a user can fix a broken
config without guessing; the CLI turns `ConfigError` into exit code 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from bot.config.cron import CronError, build_cron_trigger

DEFAULT_CONFIG = "feeds.yaml"


class ConfigError(Exception):
    """A problem in feeds.yaml, located to file, line and field."""

    def __init__(self, path: str, line: int | None, field: str, message: str):
        self.path, self.line, self.field, self.message = path, line, field, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


# --------------------------------------------------------------------------- durations

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


# --------------------------------------------------------------------------- targets

@dataclass(frozen=True)
class Target:
    """Where a brief or digest goes: console, jsonl:PATH, slack:CHANNEL, discord:ID, discord-webhook:URL."""

    kind: Literal["console", "jsonl", "slack", "discord", "discord-webhook"]
    address: str = ""

    def __str__(self) -> str:
        return self.kind if not self.address else f"{self.kind}:{self.address}"

    @property
    def redacted(self) -> str:
        """Printable form: webhook tokens are secrets and never appear in logs or replies."""
        if self.kind == "discord-webhook":
            return "discord-webhook:" + redact_webhook_url(self.address)
        return str(self)


_WEBHOOK_RE = re.compile(r"^(https?://[^/]+(?:/[^/]+)*?/api(?:/v\d+)?/webhooks/)(\d+)/([\w.-]+)/?$")


def redact_webhook_url(url: str) -> str:
    match = _WEBHOOK_RE.match(url)
    return f"{match.group(1)}{match.group(2)}/***" if match else "***"


def parse_target(text: Any) -> Target:
    if isinstance(text, Target):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"target {text!r} must be a string like 'console' or 'slack:C0123ABC'")
    text = text.strip()
    if text == "console":
        return Target("console")
    kind, sep, address = text.partition(":")
    if not sep or not address:
        raise ValueError(f"unknown target {text!r}; use console, jsonl:PATH, slack:CHANNEL_ID, "
                         "discord:CHANNEL_ID or discord-webhook:URL")
    if kind == "jsonl":
        return Target("jsonl", address)
    if kind == "slack":
        if not re.fullmatch(r"[CDG][A-Z0-9]{6,}", address):
            raise ValueError(f"slack target {text!r}: channel id must look like C0123ABC (not a #name)")
        return Target("slack", address)
    if kind == "discord":
        if not re.fullmatch(r"\d{15,21}", address):
            raise ValueError(f"discord target {text!r}: channel id must be a numeric snowflake")
        return Target("discord", address)
    if kind == "discord-webhook":
        if not _WEBHOOK_RE.match(address):
            raise ValueError("discord-webhook target must be https://discord.com/api/webhooks/ID/TOKEN")
        return Target("discord-webhook", address)
    raise ValueError(f"unknown target kind {kind!r} in {text!r}; use console, jsonl, slack, discord or discord-webhook")


TargetField = Annotated[Target, BeforeValidator(parse_target)]


# --------------------------------------------------------------------------- sections

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


# --------------------------------------------------------------------------- loading

def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == key:
                    # An unknown key is best reported at the key itself.
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _field_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _clean_pydantic_message(err: dict) -> str:
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def load_config(path: str | os.PathLike | None = None) -> Settings:
    """Load and validate feeds.yaml; raises ConfigError naming file, line and field."""
    path = Path(path or os.environ.get("BRIEFBOT_CONFIG") or DEFAULT_CONFIG)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, None, "", "config file not found (use --config or BRIEFBOT_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, None, "", f"cannot read config: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(shown, line, "", f"YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(shown, 1, "", "top level must be a mapping with topics:, feeds:, routes:")

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        # Annotated validators add the function name to loc for nested types; drop non-keys.
        loc = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))
        more = len(exc.errors()) - 1
        message = _clean_pydantic_message(err) + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        raise ConfigError(shown, _line_of(root, loc), _field_name(loc), message) from None

    problems = list(_cross_check(settings))
    if problems:
        loc, message = problems[0]
        raise ConfigError(shown, _line_of(root, loc), _field_name(loc), message)
    settings.source_path = path.resolve()
    return settings


def _cross_check(s: Settings):
    """References between sections: topics named by feeds/routes/digests must exist, names unique."""
    known = set(s.topics)
    for name, topic in s.topics.items():
        missing = [lang for lang in s.languages if lang not in topic.label]
        if missing:
            yield ("topics", name, "label"), f"missing label for language(s) {', '.join(missing)}"
    for section in ("feeds", "routes", "digests"):
        seen: set[str] = set()
        for i, entry in enumerate(getattr(s, section)):
            if entry.name in seen:
                yield (section, i, "name"), f"duplicate name {entry.name!r}"
            seen.add(entry.name)
            for j, topic in enumerate(entry.topics or []):
                if topic not in known:
                    yield (section, i, "topics", j), f"unknown topic {topic!r} (known: {', '.join(sorted(known))})"
    for i, digest in enumerate(s.digests):
        try:
            build_cron_trigger(digest.cron, digest.timezone)
        except CronError as exc:
            field = "timezone" if "timezone" in str(exc) else "cron"
            yield ("digests", i, field), str(exc)
    from zoneinfo import ZoneInfo
    try:
        ZoneInfo(s.timezone)
    except Exception:
        yield ("timezone",), f"unknown timezone {s.timezone!r} (use an IANA name like Asia/Shanghai)"


# --------------------------------------------------------------------------- environment

def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _env_count(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise ConfigError("environment", None, name, f"expected a whole number ≥ 0, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Env:
    """Secrets and endpoints: from the environment only, never from feeds.yaml."""

    database_url: str
    openai_api_key: str | None
    openai_base_url: str | None
    model: str
    slack_bot_token: str | None
    slack_app_token: str | None
    slack_signing_secret: str | None
    slack_api_base_url: str | None
    discord_bot_token: str | None
    discord_api_base_url: str | None
    discord_guild_ids: tuple[int, ...]
    allow_private_urls: bool
    port: int | None
    metrics_port: int | None
    # Overrides feed/outbox lease durations (seconds); tests and fast failover use it.
    lease_seconds: float | None = None
    # Feed-parsing worker processes; None = one when a second core is usable, 0 = parse inline.
    parse_workers: int | None = None

    @property
    def llm_enabled(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def secrets(self) -> list[str]:
        """Values that must never reach a log line or a chat reply."""
        return [v for v in (self.openai_api_key, self.slack_bot_token, self.slack_app_token,
                            self.slack_signing_secret, self.discord_bot_token) if v and len(v) >= 6]

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> "Env":
        e = os.environ if environ is None else environ

        def opt(name: str) -> str | None:
            value = (e.get(name) or "").strip()
            return value or None

        def port(name: str) -> int | None:
            value = opt(name)
            return int(value) if value and value.isdigit() else None

        guilds = tuple(int(g) for g in re.split(r"[,\s]+", e.get("DISCORD_GUILD_IDS", "")) if g.isdigit())
        return cls(
            database_url=opt("DATABASE_URL") or "sqlite:///data/briefbot.db",
            openai_api_key=opt("OPENAI_API_KEY"),
            openai_base_url=opt("OPENAI_BASE_URL"),
            model=opt("BRIEFBOT_MODEL") or "gpt-4o-mini",
            slack_bot_token=opt("SLACK_BOT_TOKEN"),
            slack_app_token=opt("SLACK_APP_TOKEN"),
            slack_signing_secret=opt("SLACK_SIGNING_SECRET"),
            slack_api_base_url=opt("SLACK_API_BASE_URL"),
            discord_bot_token=opt("DISCORD_BOT_TOKEN"),
            discord_api_base_url=opt("DISCORD_API_BASE_URL"),
            discord_guild_ids=guilds,
            allow_private_urls=_env_flag(e.get("BRIEFBOT_ALLOW_PRIVATE_URLS")),
            port=port("PORT"),
            metrics_port=port("METRICS_PORT"),
            lease_seconds=float(opt("BRIEFBOT_LEASE_SECONDS")) if opt("BRIEFBOT_LEASE_SECONDS") else None,
            parse_workers=_env_count("BRIEFBOT_PARSE_WORKERS", opt("BRIEFBOT_PARSE_WORKERS")),
        )
