"""The container: builds the running bot from config and environment. It is the one place that
knows every adapter; everything else receives the parts it needs."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Sequence, TextIO

from bot.adapters.console import ConsoleAdapter
from bot.adapters.discord import DiscordAdapter
from bot.adapters.jsonl import JsonlAdapter
from bot.adapters.slack import SlackAdapter
from bot.alerts import AlertCheck, AlertDeps
from bot.commands import CommandService
from bot.config import Env, Settings
from bot.delivery.adapter import Adapter, AdapterContext, AdapterRegistry, Deliverer
from bot.delivery.outbox import Dispatcher
from bot.digest import DigestDeps
from bot.ingest.fetch import Fetcher
from bot.models import Target
from bot.pipeline.parser_pool import FeedParser, default_parse_workers
from bot.pipeline.poll import FEED_LEASE, Poller
from bot.store import Store, default_worker_id
from bot.subscriptions import ChatConfig, SubscriptionService, merge
from bot.summarise.llm import LLMSummariser

log = logging.getLogger("briefbot")


def default_adapters() -> list[Adapter]:
    """Every platform briefbot can post to; a new platform is one package and one line here."""
    return [ConsoleAdapter(), JsonlAdapter(), SlackAdapter(), DiscordAdapter()]


def default_registry() -> AdapterRegistry:
    return AdapterRegistry(default_adapters())


@dataclass
class App:
    settings: Settings
    env: Env
    store: Store
    adapters: AdapterRegistry = field(default_factory=default_registry)
    worker_id: str = field(default_factory=default_worker_id)
    fetcher: Fetcher | None = None
    parser: FeedParser | None = None
    llm: LLMSummariser | None = None  # None: extractive briefs only
    deliverers: dict[str, Deliverer] = field(default_factory=dict)  # target kind -> deliverer
    console_stream: TextIO | None = None  # where the console target writes (default stdout)
    # feeds.yaml as loaded; `settings` is it merged with the feeds and follows made from chat.
    baseline: Settings | None = None
    chat: ChatConfig = field(default_factory=ChatConfig)
    # Called after a change from chat or the CLI (the runner re-merges its settings at once).
    on_subscriptions_changed: Callable[[], None] | None = None

    @property
    def commands(self) -> CommandService:
        return CommandService(self.settings, self.store, subscriptions=self.subscriptions)

    @property
    def subscriptions(self) -> SubscriptionService:
        return SubscriptionService(lambda: self.baseline or self.settings, self.store,
                                   allow_private=self.env.allow_private_urls,
                                   on_change=lambda: self.on_subscriptions_changed and self.on_subscriptions_changed())

    @property
    def lease(self) -> timedelta | None:
        """The lease override for feeds and outbox rows (tests, fast failover), else each one's default."""
        return timedelta(seconds=self.env.lease_seconds) if self.env.lease_seconds else None

    def adapter_context(self, role: str = "all") -> AdapterContext:
        return AdapterContext(env=self.env, settings=lambda: self.settings, commands=lambda: self.commands,
                              console_stream=self.console_stream, role=role)

    def secrets(self) -> list[str]:
        return self.env.secrets(self.adapters.secret_env())


def settle_heap() -> None:
    """Put what start-up left alive (modules, configuration, compiled patterns, table metadata) out
    of the cycle collector's reach. A long-running process calls this once, after start-up.

    Every full collection walks every tracked object; on a cold poll of 1,000 feeds that walk over
    objects that live as long as the process was about 0.5 ms of CPU per feed. Garbage is collected
    first, so nothing dead is kept for good."""
    gc.collect()
    gc.freeze()


def build_app(settings: Settings, env: Env, store: Store | None = None, console_stream: TextIO | None = None,
              adapters: Sequence[Adapter] | None = None) -> App:
    store = store or Store(env.database_url)
    store.create()
    registry = AdapterRegistry(list(adapters)) if adapters is not None else default_registry()
    app = App(settings=settings, env=env, store=store, adapters=registry, console_stream=console_stream)
    merge_chat_config(app, settings)
    settings = app.settings
    app.fetcher = Fetcher(settings.fetch, allow_private=env.allow_private_urls)
    app.parser = FeedParser(default_parse_workers() if env.parse_workers is None else env.parse_workers)
    if env.llm_enabled:
        app.llm = LLMSummariser(settings, env, store)
    kinds = {"console", "jsonl"} | {t.kind for t in settings.all_targets()}
    app.deliverers = registry.deliverers(app.adapter_context(), kinds)
    for feed in settings.feeds:
        store.ensure_feed(feed.name, feed.url)
    return app


def merged_settings(app: App, baseline: Settings, chat: ChatConfig) -> Settings:
    """feeds.yaml (`baseline`) with the feeds and follows made from chat (`chat`)."""
    return merge(baseline, chat, app.adapters.parse_target)


def merge_chat_config(app: App, baseline: Settings) -> None:
    """Run on `baseline` and what the database adds to it (build time: nothing is scheduled yet)."""
    app.baseline, app.chat = baseline, ChatConfig.load(app.store)
    app.settings = merge(baseline, app.chat, app.adapters.parse_target)


def add_new_deliverers(app: App) -> list[str]:
    """Build deliverers for target kinds the current settings use and the app has none for yet.

    `app.deliverers` is updated in place: the dispatcher holds that very dict, so its next row of
    a new kind finds the new deliverer. Deliverers of kinds no longer configured are kept, because
    rows already queued for those targets (pending, retrying, or retried by hand) still need them;
    an idle one costs an idle HTTP session. An adapter serving several kinds keeps one deliverer."""
    wanted = {t.kind for t in app.settings.all_targets()} - set(app.deliverers)
    if not wanted:
        return []
    by_adapter = {id(app.adapters.adapter_for(kind)): d for kind, d in app.deliverers.items()}
    added = []
    for kind in sorted(wanted):
        adapter = app.adapters.adapter_for(kind)
        if adapter is None:
            continue
        if id(adapter) not in by_adapter:
            by_adapter[id(adapter)] = adapter.deliverer(app.adapter_context())
        app.deliverers[kind] = by_adapter[id(adapter)]
        added.append(kind)
    return added


def swap_fetch_and_llm(app: App, previous: Settings) -> list:
    """A new Fetcher if the `fetch` section changed, a new LLMSummariser if what it was built from
    (`llm`, `languages`) changed; returns the replaced ones for the caller to close once no job
    uses them. A summariser that stays is pointed at the new settings (topics, prompts)."""
    settings, retired = app.settings, []
    if settings.fetch != previous.fetch and app.fetcher is not None:
        retired.append(app.fetcher)
        app.fetcher = Fetcher(settings.fetch, allow_private=app.env.allow_private_urls)
    if app.llm is not None:
        if settings.llm != previous.llm or settings.languages != previous.languages:
            retired.append(app.llm)
            app.llm = LLMSummariser(settings, app.env, app.store)
        else:
            app.llm.settings = settings
    return retired


def make_poller(app: App) -> Poller:
    return Poller(settings=app.settings, store=app.store, fetcher=app.fetcher, parser=app.parser, llm=app.llm,
                  worker_id=app.worker_id, lease=app.lease or FEED_LEASE)


def make_digest_deps(app: App) -> DigestDeps:
    return DigestDeps(current_settings=lambda: app.settings, store=app.store, worker_id=app.worker_id,
                      enqueue=app.store.enqueue, llm=app.llm)


def make_alert_check(app: App) -> AlertCheck:
    return AlertCheck(AlertDeps(current_settings=lambda: app.settings, store=app.store, worker_id=app.worker_id,
                                redact=app.adapters.shown, llm_enabled=app.env.llm_enabled))


def make_dispatcher(app: App) -> Dispatcher:
    return Dispatcher(app.store, app.deliverers, app.adapters.parse_target, app.worker_id, app.lease,
                      posts_per_hour=lambda target: app.settings.posts_per_hour(target),
                      follow_ups_for=lambda target, topics: app.settings.follow_ups_for(target, topics))


async def close_app(app: App) -> None:
    if app.parser is not None:
        app.parser.close()
    closers = [app.fetcher, app.llm, *{id(d): d for d in app.deliverers.values()}.values()]
    for closer in closers:
        if closer is None:
            continue
        try:
            await closer.aclose()
        except Exception:  # closing must not mask the real exit reason
            log.debug("error while closing %r", closer, exc_info=True)


def parse_target(text: str) -> Target:
    """A target validated by the default adapters (for tools and tests outside a running app)."""
    return default_registry().parse_target(text)
