"""The dashboard, served beside /healthz by `briefbot run`, or alone by `briefbot dashboard` (a host
that serves only the dashboard against the shared database). aiohttp and the templates are imported
only when a server starts."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from bot.app.container import App, default_registry, settle_heap
from bot.config import Env, Settings, modified_time, reload_settings
from bot.delivery.adapter import AdapterRegistry
from bot.store import Store
from bot.subscriptions import ChatConfig, SubscriptionService, merge
from bot.web.deps import DashboardDeps

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("briefbot.dashboard")
EXIT_CONFIG = 2
DEFAULT_PORT = 8080


def dashboard_deps(app: App) -> DashboardDeps:
    return DashboardDeps(settings=lambda: app.settings, store=app.store, env=app.env,
                         show_target=app.adapters.shown,
                         parse_target=app.adapters.parser_for(app.settings.source_path),
                         subscriptions=lambda: app.subscriptions, secrets=app.secrets())


def mount_dashboard(web_app: "web.Application", app: App) -> bool:
    """Add the dashboard's pages to the running bot's HTTP server (when its access rule allows)."""
    deps = dashboard_deps(app)
    access = deps.access()
    if not access.enabled:  # the templates are not even loaded
        log.warning(access.describe())
        return False
    from bot.web.server import add_dashboard

    return add_dashboard(web_app, deps)


class FollowedConfig:
    """feeds.yaml as it is now, for a dashboard serving without the bot (which reloads it itself):
    read again when the file's modification time changes. A file that no longer loads keeps the
    last good settings, and its problem is logged once per change."""

    def __init__(self, settings: Settings, registry: AdapterRegistry):
        self._settings, self._registry = settings, registry
        self._path = settings.source_path
        self._mtime = modified_time(self._path)
        self._lock = threading.Lock()  # pages are built in worker threads

    def __call__(self) -> Settings:
        mtime = modified_time(self._path)
        if mtime is not None and mtime != self._mtime:
            with self._lock:
                if mtime != self._mtime:
                    self._mtime = mtime
                    settings = reload_settings(self._path, self._registry.parser_for(self._path),
                                             self._registry.check_admin, log)
                    if settings is not None:
                        self._settings = settings
                        log.info("config reloaded from %s", self._path)
        return self._settings


def dashboard_command(args, settings: Settings, env: Env) -> int:
    registry = default_registry()
    store = Store(env.database_url)
    store.create()
    parse_target = registry.parser_for(settings.source_path)
    configured = FollowedConfig(settings, registry)
    service = SubscriptionService(configured, store, allow_private=env.allow_private_urls)
    # The feeds and follows made from chat count as configured, as in the running bot.
    deps = DashboardDeps(settings=lambda: merge(configured(), ChatConfig.load(store), registry.parse_target),
                         store=store, env=env, show_target=registry.shown, parse_target=parse_target,
                         subscriptions=lambda: service, secrets=env.secrets(registry.secret_env()))
    access = deps.access()
    if not access.enabled:
        print(f"briefbot dashboard: {access.describe()}", file=sys.stderr)
        return EXIT_CONFIG
    port = getattr(args, "port", None) or env.port or env.metrics_port or DEFAULT_PORT
    try:
        return asyncio.run(_serve(deps, env.bind, port))
    except KeyboardInterrupt:
        return 0
    finally:
        store.close()


async def _serve(deps: DashboardDeps, host: str, port: int) -> int:
    from aiohttp import web

    from bot.web.server import dashboard_app

    runner = web.AppRunner(dashboard_app(deps), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error("dashboard could not listen on %s:%d: %s", host, port, exc)
        await runner.cleanup()
        return 1
    log.info("dashboard on http://%s:%d/", host, port)
    settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0
