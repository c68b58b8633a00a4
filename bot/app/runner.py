"""`briefbot run`: one in-memory AsyncIOScheduler per process.

Jobs: one interval job per feed (jittered), the outbox dispatcher, the digests, the alert
check, a config watcher. Several workers on one database coordinate through leases in the store, never
through a shared APScheduler job store.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app.container import (App, add_new_deliverers, make_alert_check, make_digest_deps, make_dispatcher,
                               make_poller, merged_settings, swap_fetch_and_llm)
from bot.app.health import start_health_server
from bot.config import FeedConfig, Settings, modified_time, reload_settings
from bot.delivery.outbox import Dispatcher
from bot.digest import add_digest_jobs
from bot.pipeline.poll import Poller
from bot.subscriptions import ChatConfig

log = logging.getLogger("briefbot.scheduler")

DISPATCH_EVERY = timedelta(seconds=5)
CONFIG_CHECK_EVERY = timedelta(seconds=30)
ALERT_CHECK_EVERY = timedelta(minutes=1)
SHUTDOWN_GRACE_SECONDS = 20.0


class BotRunner:
    def __init__(self, app: App, poller: Poller | None = None, dispatcher: Dispatcher | None = None,
                 role: str = "all"):
        # "web" serves only the adapters' HTTP command endpoints and health (a Procfile web process);
        # "all" does everything.
        self.role = role
        self.app = app
        self.poller = poller or make_poller(app)
        self.dispatcher = dispatcher or make_dispatcher(app)
        self.alert_check = make_alert_check(app)
        self.scheduler: AsyncIOScheduler | None = None
        self._inflight: set[asyncio.Task] = set()
        self._stop = asyncio.Event()
        self._config_mtime = self._mtime()
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task] = set()
        self._services: list = []
        self._retiring: set[asyncio.Task] = set()
        # A change from chat or the CLI in this process applies at once; other processes' changes
        # at the next config check.
        app.on_subscriptions_changed = self.request_subscriptions_refresh
        if app.baseline is None:  # an App built without build_app runs on feeds.yaml alone so far
            app.baseline = app.settings

    # ----------------------------------------------------------------- jobs
    def _mark_inflight(self) -> None:
        """Remember the running job's task so shutdown can let it finish."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def poll_job(self, feed_name: str) -> None:
        self._mark_inflight()
        feed = self.app.settings.feed(feed_name)
        if feed is None or not feed.enabled:
            return
        report = await self.poller.poll_feed(feed)
        if report.new_briefs:
            await self.dispatch_job()

    async def dispatch_job(self) -> None:
        self._mark_inflight()
        try:
            await self.dispatcher.dispatch_once()
        except Exception:
            log.exception("outbox dispatch failed; will retry")

    async def alert_job(self, now: datetime | None = None) -> None:
        """Open and close incidents; what it queued goes out at once."""
        self._mark_inflight()
        try:
            # Off the event loop: it reads every feed's state and each target's latest deliveries.
            result = await asyncio.to_thread(self.alert_check.run, now)
        except Exception:
            log.exception("alert check failed; will retry")
            return
        if result is not None and (result.alerted or result.resolved):
            await self.dispatch_job()

    def _feed_job_id(self, feed: FeedConfig) -> str:
        return f"poll:{feed.name}"

    def _schedule_feeds(self) -> None:
        assert self.scheduler is not None
        wanted = {self._feed_job_id(f): f for f in self.app.settings.polled_feeds}
        for job in self.scheduler.get_jobs():
            if job.id.startswith("poll:") and job.id not in wanted:
                job.remove()
        now = datetime.now(timezone.utc)
        for job_id, feed in wanted.items():
            seconds = feed.every.total_seconds()
            # A random first-poll offset lets several workers started together share the first cycle
            # (otherwise the first one up claims nearly every feed).
            first_run = now + timedelta(seconds=random.uniform(0, min(15.0, seconds * 0.1)))
            # Jitter spreads many feeds over the interval instead of a thundering herd.
            trigger = IntervalTrigger(seconds=seconds, jitter=min(30, int(seconds * 0.1)))
            existing = self.scheduler.get_job(job_id)
            if existing is not None:
                existing.reschedule(trigger)
                continue
            self.scheduler.add_job(self.poll_job, trigger, args=[feed.name], id=job_id, next_run_time=first_run,
                                   max_instances=1, coalesce=True, misfire_grace_time=int(seconds))

    def _mtime(self) -> float | None:
        return modified_time(self.app.settings.source_path)

    async def config_watch_job(self) -> None:
        mtime = self._mtime()
        if mtime is None or mtime == self._config_mtime:
            await self.refresh_subscriptions()
            return
        await self.reload_config()

    def request_subscriptions_refresh(self) -> None:
        task = asyncio.get_running_loop().create_task(self.refresh_subscriptions())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def refresh_subscriptions(self) -> bool:
        """Apply the feeds and follows made from chat or the CLI (by any process) since the last look."""
        async with self._reload_lock:
            try:
                chat = await asyncio.to_thread(ChatConfig.load, self.app.store)
                if chat == self.app.chat or self.app.baseline is None:
                    return False
                self._apply(merged_settings(self.app, self.app.baseline, chat))
            except Exception as exc:  # the database or a merge problem must never take the running bot down
                log.error("subscriptions from chat could not be applied, keeping the last ones: %s: %s",
                          type(exc).__name__, str(exc)[:300])
                return False
            self.app.chat = chat
            log.info("subscriptions from chat applied: %d feeds, %d follows", len(chat.subscriptions),
                     len(chat.follows))
            return True

    def request_reload(self) -> None:
        """SIGHUP: reload in a task of its own, so the signal callback returns at once and no
        reload problem can surface as an "Exception in callback" traceback."""
        task = asyncio.get_running_loop().create_task(self.reload_config())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload_config(self) -> bool:
        """Reload feeds.yaml; a broken file keeps the last good config running.

        The file is read and validated in a worker thread, so the event loop keeps answering
        /healthz and running jobs meanwhile; the result is applied on the loop. One reload at a time."""
        async with self._reload_lock:
            self._config_mtime = self._mtime()
            path = self.app.settings.source_path
            settings = await asyncio.to_thread(reload_settings, path, self.app.adapters.parser_for(path),
                                               self.app.adapters.check_admin, log)
            if settings is None:
                return False
            try:
                chat = await asyncio.to_thread(ChatConfig.load, self.app.store)
                added = self._apply(merged_settings(self.app, settings, chat))
                self.app.baseline, self.app.chat = settings, chat
            except Exception as exc:
                log.error("config reload from %s could not be applied: %s: %s", path, type(exc).__name__,
                          str(exc)[:300])
                return False
            log.info("config reloaded from %s: %d feeds, %d routes, %d digests%s", path, len(settings.feeds),
                     len(settings.routes), len(settings.digests),
                     f"; new target kinds: {', '.join(added)}" if added else "")
            return True

    def _apply(self, settings: Settings) -> list[str]:
        """Everything in the file applies live: feeds, topics, routes, targets of new kinds (their
        deliverers are built now), digests (rescheduled), and `fetch` and `llm` (a new fetcher or
        summariser for the next polls). Returns the target kinds that got a deliverer."""
        previous, self.app.settings = self.app.settings, settings
        try:
            added = add_new_deliverers(self.app)
            self._retire(swap_fetch_and_llm(self.app, previous))
        except Exception:
            self.app.settings = previous  # nothing else has seen the new settings yet
            raise
        # Set before reload: the poller's briefer is rebuilt from them.
        self.poller.fetcher, self.poller.llm = self.app.fetcher, self.app.llm
        self.poller.reload(settings)
        if self.scheduler is not None:
            self._schedule_feeds()
            add_digest_jobs(self.scheduler, make_digest_deps(self.app))
        return added

    def _retire(self, parts: list) -> None:
        """Close replaced fetchers/summarisers once the jobs running now (which may still hold
        them mid-request) are done; jobs started from now on use the new ones."""
        if not parts:
            return
        running = [t for t in self._inflight if not t.done() and t is not asyncio.current_task()]

        async def close_when_unused() -> None:
            if running:
                await asyncio.wait(running, timeout=SHUTDOWN_GRACE_SECONDS * 6)
            for part in parts:
                try:
                    await part.aclose()
                except Exception:
                    log.debug("error closing replaced %r", part, exc_info=True)

        task = asyncio.get_running_loop().create_task(close_when_unused())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self.role == "web":
            await self._start_services()
            return
        self.scheduler = AsyncIOScheduler(timezone=timezone.utc)
        self._schedule_feeds()
        self.scheduler.add_job(self.dispatch_job, IntervalTrigger(seconds=DISPATCH_EVERY.total_seconds()),
                               id="outbox", max_instances=1, coalesce=True)
        self.scheduler.add_job(self.config_watch_job,
                               IntervalTrigger(seconds=CONFIG_CHECK_EVERY.total_seconds()),
                               id="config-watch", max_instances=1, coalesce=True)
        self.scheduler.add_job(self.alert_job, IntervalTrigger(seconds=ALERT_CHECK_EVERY.total_seconds()),
                               id="alerts", max_instances=1, coalesce=True)
        add_digest_jobs(self.scheduler, make_digest_deps(self.app))
        self.scheduler.start()
        await self._start_services()

    async def _start_services(self) -> None:
        """HTTP health/metrics and the adapters' command listeners; a failing adapter never stops polling."""
        try:
            self._services.append(await start_health_server(self.app))
        except OSError as exc:
            log.error("health/metrics server could not start: %s", exc)
        context = self.app.adapter_context(self.role)
        for adapter in self.app.adapters.adapters:
            try:
                service = await adapter.start(context)
            except Exception:
                log.exception("%s adapter failed to start; posting continues through the outbox", adapter.name)
                continue
            if service is not None:
                self._services.append(service)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        # Pause (no new jobs) rather than shut down first: APScheduler's asyncio executor cancels
        # running jobs on shutdown, which would cut an in-flight poll or delivery short.
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        pending = [t for t in self._inflight if not t.done() and t is not asyncio.current_task()]
        if pending:
            log.info("waiting up to %ss for %d in-flight job(s)", SHUTDOWN_GRACE_SECONDS, len(pending))
            done, still = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in still:
                # Cancelled deliveries stay pending in the outbox (their lease expires); nothing is lost.
                task.cancel()
        if self._retiring:
            await asyncio.wait(list(self._retiring), timeout=SHUTDOWN_GRACE_SECONDS)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for service in reversed(self._services):
            try:
                await service.stop()
            except Exception:
                log.debug("error stopping %r", service, exc_info=True)


def install_signal_handlers(runner: BotRunner) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, runner.request_stop)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        loop.add_signal_handler(signal.SIGHUP, runner.request_reload)
    except (NotImplementedError, RuntimeError, AttributeError):
        pass
