"""Secrets and endpoints, from the environment only (never from feeds.yaml).

Each chat adapter reads its own variables from `Env.environ`; this module knows only the core's."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Mapping

from bot.config.errors import ConfigError


# The core's own secrets besides the LLM key: the dashboard's web token.
CORE_SECRET_ENV = ("BRIEFBOT_WEB_TOKEN",)


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _env_count(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise ConfigError("environment", None, name, f"expected a whole number ≥ 0, got {value!r}")
    return int(value)


def _env_seconds(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    # A lease shorter than a second expires mid-statement; one over a day hides a dead worker.
    if not 1 <= seconds <= 86400:
        raise ConfigError("environment", None, name, f"expected seconds from 1 to 86400, got {value[:40]!r}")
    return seconds


@dataclass(frozen=True)
class Env:
    """The core's settings from the environment; `environ` keeps the whole environment for the
    adapters, which read their own variables (tokens, API bases) from it."""

    database_url: str
    openai_api_key: str | None
    openai_base_url: str | None
    model: str
    allow_private_urls: bool
    port: int | None
    metrics_port: int | None
    # Overrides feed/outbox lease durations (seconds); tests and fast failover use it.
    lease_seconds: float | None = None
    # Feed-parsing worker processes; None = one when a second core is usable, 0 = parse inline.
    parse_workers: int | None = None
    # The address the HTTP server (health, metrics, dashboard) listens on: BRIEFBOT_BIND.
    bind: str = "0.0.0.0"
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    def get(self, name: str) -> str | None:
        """A variable's value, stripped; None when unset or blank."""
        value = (self.environ.get(name) or "").strip()
        return value or None

    def secrets(self, names: tuple[str, ...] = ()) -> list[str]:
        """Values that must never reach a log line or a chat reply: the LLM key, the web token and
        the variables `names` (the adapters declare theirs)."""
        values = [self.openai_api_key] + [self.get(name) for name in (*CORE_SECRET_ENV, *names)]
        return [v for v in values if v and len(v) >= 6]

    def replace(self, **changes) -> "Env":
        """A copy with some fields changed; UPPER-CASE names set environment variables (which the
        adapters read), lower-case ones the core's fields."""
        variables = {k: v for k, v in changes.items() if k.isupper()}
        fields = {k: v for k, v in changes.items() if not k.isupper()}
        return dataclasses.replace(self, environ={**self.environ, **variables}, **fields)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Env":
        e = dict(os.environ if environ is None else environ)

        def opt(name: str) -> str | None:
            value = (e.get(name) or "").strip()
            return value or None

        def port(name: str) -> int | None:
            value = opt(name)
            return int(value) if value and value.isdigit() else None

        return cls(
            database_url=opt("DATABASE_URL") or "sqlite:///data/briefbot.db",
            openai_api_key=opt("OPENAI_API_KEY"),
            openai_base_url=opt("OPENAI_BASE_URL"),
            model=opt("BRIEFBOT_MODEL") or "gpt-4o-mini",
            allow_private_urls=_env_flag(e.get("BRIEFBOT_ALLOW_PRIVATE_URLS")),
            port=port("PORT"),
            metrics_port=port("METRICS_PORT"),
            lease_seconds=_env_seconds("BRIEFBOT_LEASE_SECONDS", opt("BRIEFBOT_LEASE_SECONDS")),
            parse_workers=_env_count("BRIEFBOT_PARSE_WORKERS", opt("BRIEFBOT_PARSE_WORKERS")),
            bind=opt("BRIEFBOT_BIND") or "0.0.0.0",
            environ=e,
        )
