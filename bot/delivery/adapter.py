"""What a platform adapter is, and the registry the core asks about targets, secrets and services.

The core never names a platform. An adapter owns its target kinds (it validates their addresses
and says how they may be printed), its environment variables (and which of them are secrets),
its deliverer, its `/brief` command service, its health fields and its extra CLI commands. The
container builds the registry from the adapters it knows; adding a platform is one package and
one line there.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Iterable, Mapping, NamedTuple, Protocol, TextIO

from bot.alerts import Alert
from bot.commands import CommandService
from bot.config import Env, Settings
from bot.models import Brief, Digest, Figure, Notice, Source, Target


class DeliveryError(Exception):
    """A failed delivery.

    permanent=True (unknown channel, revoked token, invalid webhook): the outbox marks the row
    failed and logs how to fix it, instead of retrying forever. Otherwise the row is retried with
    backoff, honouring `retry_after` seconds when the platform gave one.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


# Before the text a follow-up's source gave the story in a language it had none in, in that language.
FILLED_HEADING = {"en": "Now in English", "zh": "现有中文摘录"}


class FilledText(NamedTuple):
    lang: str
    heading: str  # FILLED_HEADING, in `lang`
    title: str
    summary: str


@dataclass(frozen=True)
class FollowUp:
    """One more outlet (and the figures it adds) for a story already posted to a target.

    `brief` is the story as it stands now: where the platform can, the original message is
    updated to it. `parent_ref` is the platform's id of that message (the outbox row's external
    id: the platform's message id or timestamp), `parent_key` the delivery key it was posted with.
    `filled`: the languages whose title and summary this source's own text gave the story (it had
    only a stand-in in them); the follow-up carries that text, for readers who had none in their
    language and for targets whose original cannot be updated."""

    brief: Brief
    source: Source
    figures: list[Figure]
    parent_ref: str | None
    parent_key: str
    filled: tuple[str, ...] = ()

    @property
    def lang(self) -> str:
        return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in self.source.title) else "en"

    def headline(self) -> str:
        """"Also reported by FEED (LANG)", in plain text (each renderer escapes and links)."""
        return f"Also reported by {self.source.feed} ({self.lang})"

    def figures_text(self) -> str:
        """The new figures after their label in the source's language; empty when it adds none."""
        if not self.figures:
            return ""
        label = "新增数字" if self.lang == "zh" else "New figures"
        return f"{label}: " + ", ".join(f.text for f in self.figures)

    def filled_texts(self) -> list[FilledText]:
        """The text this source gave the story in each language it filled, in plain text."""
        return [FilledText(lang, FILLED_HEADING.get(lang, lang), self.brief.title.get(lang, ""),
                           self.brief.summary.get(lang, "")) for lang in self.filled]


class Deliverer(Protocol):
    """Posts to one adapter's targets. Must never raise anything but DeliveryError for delivery problems.

    `delivery_key` is stable across retries of the same outbox row (usable as an idempotency
    key / nonce). `attempt` is 1 for the first try; > 1 means an earlier try may have landed
    before a crash, so adapters that can check should avoid posting twice. The return value is
    the platform's message id, or None. `settings`, when a deliverer has them, say which of its
    targets get follow-ups (a route's `follow_ups`).
    """

    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None: ...

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None: ...

    # The flood guard's summary of what one feed's poll held back (optional: without it such rows fail).
    async def deliver_notice(self, target: Target, notice: Notice, *, delivery_key: str, attempt: int) -> str | None: ...

    # An incident or its recovery (optional: without it such rows fail).
    async def deliver_alert(self, target: Target, alert: Alert, *, delivery_key: str, attempt: int) -> str | None: ...

    # A later source of a posted story (optional: without it the adapter's targets get no follow-ups).
    async def deliver_follow_up(self, target: Target, follow_up: FollowUp, *, delivery_key: str,
                                attempt: int) -> str | None: ...

    # Where a person opens a message this deliverer posted (an http(s) URL), from its target and the id
    # a deliver_* call returned (several ids, comma-separated: the first message), or None. Asked right
    # after each post; what the link needs beyond the id (a workspace's address, a channel's server) is
    # learned once and kept. Optional: without it the dashboard shows the id alone.
    async def message_link(self, target: Target, external_id: str) -> str | None: ...

    async def aclose(self) -> None: ...


class Service(Protocol):
    """Something an adapter keeps running (a command listener); stopped at shutdown."""

    async def stop(self) -> None: ...


@dataclass
class AdapterContext:
    """What an adapter gets from the running bot. Settings change on reload, so they are read
    through `settings()` each time; `commands()` answers `/brief` for the current settings."""

    env: Env
    settings: Callable[[], Settings]
    commands: Callable[[], CommandService]
    console_stream: TextIO | None = None
    # "all", or "web": a web process serves only HTTP command endpoints and health.
    role: str = "all"


@dataclass(frozen=True)
class CliCommand:
    """A subcommand an adapter adds to `briefbot` (for example registering its slash command)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, AdapterContext], Awaitable[int]]


class Adapter(Protocol):
    name: str
    # Target kinds this adapter delivers to, each with its written form for help texts.
    target_kinds: Mapping[str, str]
    # Environment variables whose values must never be logged.
    secret_env: tuple[str, ...]
    # Library loggers that are too chatty at INFO.
    quiet_loggers: tuple[str, ...]

    def parse_target(self, kind: str, address: str, base_dir: Path | None = None) -> Target:
        """The validated target in one canonical spelling (equal targets are one destination); raise
        ValueError saying what is wrong. `base_dir` is feeds.yaml's directory, against which a
        relative path resolves (None: leave it relative)."""

    def deliverer(self, context: AdapterContext) -> Deliverer: ...

    async def start(self, context: AdapterContext) -> Service | None:
        """Start the command listener, or None when it is not configured (posting still works)."""

    def health(self, env: Env) -> dict:
        """Fields for /healthz: what is configured (never a secret)."""

    def claims_port(self, env: Env) -> bool:
        """True when the adapter serves its own HTTP endpoint on PORT (health then moves off it)."""

    def cli_commands(self) -> list[CliCommand]: ...

    def admin_problem(self, ident: str) -> str | None:
        """Why `ident` (from an `admins` entry `NAME:ident`) can never match anyone on this platform,
        or None when it is an ID in the platform's own format."""


class PostingOnly:
    """Defaults for an adapter that only posts: no listener, no health fields, no port, no commands."""

    secret_env: tuple[str, ...] = ()
    quiet_loggers: tuple[str, ...] = ()

    async def start(self, context: AdapterContext) -> Service | None:
        return None

    def health(self, env: Env) -> dict:
        return {}

    def claims_port(self, env: Env) -> bool:
        return False

    def cli_commands(self) -> list[CliCommand]:
        return []

    def admin_problem(self, ident: str) -> str | None:
        return "it takes no chat commands, so it has no admins"


@dataclass
class AdapterRegistry:
    adapters: list[Adapter] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_kind: dict[str, Adapter] = {}
        for adapter in self.adapters:
            for kind in adapter.target_kinds:
                if kind in self._by_kind:
                    raise ValueError(f"target kind {kind!r} claimed by {self._by_kind[kind].name} and {adapter.name}")
                self._by_kind[kind] = adapter

    def target_forms(self) -> str:
        return ", ".join(form for adapter in self.adapters for form in adapter.target_kinds.values())

    def parse_target(self, text: str, base_dir: Path | None = None) -> Target:
        """`kind` or `kind:address`, validated by the adapter owning the kind (ValueError otherwise)."""
        if isinstance(text, Target):
            return text
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"target {text!r} must be a string; use one of {self.target_forms()}")
        kind, _, address = text.strip().partition(":")
        adapter = self._by_kind.get(kind)
        if adapter is None:
            raise ValueError(f"unknown target kind {kind!r} in {text.strip()!r}; use one of {self.target_forms()}")
        return adapter.parse_target(kind, address, base_dir=base_dir)

    def shown(self, text: str) -> str:
        """A stored target as it may be printed: its adapter's redacted form. An address the adapter
        refuses may still hold a secret, so only its kind is shown then."""
        try:
            return self.parse_target(text).redacted
        except ValueError:
            return f"{str(text).partition(':')[0]}:(invalid target)"

    def parser_for(self, config_path: str | Path | None) -> Callable[[str], Target]:
        """parse_target for the targets of the feeds.yaml at `config_path` (its paths resolve
        against the file's directory; without a file, they stay as written)."""
        if config_path is None:
            return self.parse_target
        return functools.partial(self.parse_target, base_dir=Path(config_path).resolve().parent)

    def check_admin(self, entry: str) -> str:
        """An `admins` entry `NAME:ID`, checked by the adapter called NAME (ValueError otherwise)."""
        name, _, ident = entry.partition(":")
        adapter = next((a for a in self.adapters if a.name == name), None)
        if adapter is None:
            names = ", ".join(a.name for a in self.adapters)
            raise ValueError(f"admin {entry!r} names no chat platform briefbot knows (one of: {names})")
        problem = adapter.admin_problem(ident)
        if problem:
            raise ValueError(f"admin {entry!r} can never match anyone on {name}: {problem}")
        return entry

    def adapter_for(self, kind: str) -> Adapter | None:
        return self._by_kind.get(kind)

    def secret_env(self) -> tuple[str, ...]:
        return tuple(name for adapter in self.adapters for name in adapter.secret_env)

    def quiet_loggers(self) -> tuple[str, ...]:
        return tuple(name for adapter in self.adapters for name in adapter.quiet_loggers)

    def cli_commands(self) -> Iterable[CliCommand]:
        for adapter in self.adapters:
            yield from adapter.cli_commands()

    def deliverers(self, context: AdapterContext, kinds: Iterable[str]) -> dict[str, Deliverer]:
        """A deliverer for each kind in `kinds`; an adapter serving several kinds builds one."""
        built: dict[str, Deliverer] = {}
        out: dict[str, Deliverer] = {}
        for kind in kinds:
            adapter = self._by_kind.get(kind)
            if adapter is None:
                continue
            if adapter.name not in built:
                built[adapter.name] = adapter.deliverer(context)
            out[kind] = built[adapter.name]
        return out
