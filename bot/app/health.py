"""`/healthz` and `/metrics` for `briefbot run` (on METRICS_PORT, else PORT, else 8080)."""

from __future__ import annotations

import json
import logging
import time
from typing import Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import metrics
from bot.app.container import App
from bot.app.dashboard_command import mount_dashboard

log = logging.getLogger("briefbot.health")

# Adds a package's pages to the server beside /healthz and /metrics: (server, app) -> whether it did.
RouteAdder = Callable[[web.Application, App], object]
# What the running bot serves beside health and metrics; another web package is one more entry.
EXTRA_ROUTES: tuple[RouteAdder, ...] = (mount_dashboard,)


def health_payload(app: App) -> tuple[int, dict]:
    last = metrics.LAST_SUCCESSFUL_POLL._value.get() or None
    age = round(time.time() - last, 1) if last else None
    shortest = min((f.every.total_seconds() for f in app.settings.feeds), default=600)
    # Unhealthy when no poll has succeeded for several intervals: something is systematically wrong.
    stale_after = max(3 * shortest, 900)
    healthy = age is None or age < stale_after
    try:
        backlog = app.store.outbox_backlog()
        db_ok = True
    except Exception:
        backlog, db_ok = None, False
    status = 200 if healthy and db_ok else 503
    return status, {"status": "ok" if status == 200 else "degraded", "worker": app.worker_id,
                    "last_successful_poll_age_seconds": age, "stale_after_seconds": stale_after,
                    "database": "ok" if db_ok else "unreachable", "outbox_backlog": backlog,
                    "adapters": {a.name: a.health(app.env) for a in app.adapters.adapters if a.health(app.env)}}


def make_health_app(app: App, extra_routes: Sequence[RouteAdder] = EXTRA_ROUTES) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        status, body = health_payload(app)
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    async def metrics_view(_request: web.Request) -> web.Response:
        try:
            metrics.OUTBOX_BACKLOG.set(app.store.outbox_backlog())
        except Exception:
            pass
        return web.Response(body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    web_app = web.Application()
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics_view)
    for add_routes in extra_routes:
        add_routes(web_app, app)
    return web_app


class _Service:
    def __init__(self, runner: web.AppRunner):
        self.runner = runner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_health_server(app: App, host: str | None = None,
                              extra_routes: Sequence[RouteAdder] = EXTRA_ROUTES) -> _Service:
    # An adapter serving its own HTTP endpoint on PORT keeps it; health then needs METRICS_PORT (default 8080).
    port_taken = any(adapter.claims_port(app.env) for adapter in app.adapters.adapters)
    port = app.env.metrics_port or (app.env.port if not port_taken else None) or 8080
    host = host or app.env.bind  # BRIEFBOT_BIND; the dashboard's access rule depends on it
    runner = web.AppRunner(make_health_app(app, extra_routes), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("health and metrics on http://%s:%d/healthz and /metrics", host, port)
    return _Service(runner)
