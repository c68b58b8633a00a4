"""Digest runs: the cron job per digest, the catch-up job, and the claim that makes a run happen once.

Each scheduled fire time is one run. Exactly-once posting rests on the store: the unique `digest_runs`
row ("<name>@<fire time in UTC>", e.g. "oncall@2026-12-02T08:00Z") is the claim, and outbox rows are
unique per (kind, ref, target). A named lease only keeps two workers from both paying for the build
(and the LLM call) at the same moment.

Daylight saving, for a digest in a zone that has it (Europe/Berlin here):
- Spring forward (02:00 → 03:00): a fire time that does not exist that night ("30 2 * * *") fires
  once, at 03:30 summer time, the instant 02:30 winter time would have been; the day is neither
  skipped nor doubled. Times outside the gap ("0 8 * * *") keep their wall-clock time.
- Fall back (03:00 → 02:00): the hour 02:00–03:00 happens twice. A cron with fixed hours fires once
  at a repeated wall-clock time, the first time it comes round ("30 2 * * *" posts once that day);
  a cron whose hour field has `*` ("0 * * * *", "*/2") fires every real hour, so it tiles time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from apscheduler.schedulers.base import BaseScheduler

from bot.config import DigestConfig, Settings
from bot.config.cron import build_cron_trigger
from bot.digest.build import build_digest
from bot.digest.clock import aware_utc, zone
from bot.digest.overview import add_overview
from bot.metrics import DIGEST_RUNS
from bot.models import Digest, utcnow
from bot.store import Store
from bot.summarise.llm import LLMSummariser

log = logging.getLogger("briefbot.digest")

# How long one worker may hold a digest build before another may take over (crash recovery).
BUILD_LEASE = timedelta(minutes=10)
CATCH_UP_EVERY = timedelta(minutes=1)
# The furthest back `scheduled_fire_time` looks: a leap-day cron fires once in 8 years.
_MAX_LOOKBACK = timedelta(days=366 * 8 + 2)

_JOB_PREFIX = "digest:"
CATCH_UP_JOB_ID = "digests-catch-up"  # outside the "digest:<name>" id space

Enqueue = Callable[[str, str, list[str]], object]
"""Queue deliveries: (kind, ref id, target strings). Unique per (kind, ref, target), so a repeat never posts twice."""


@dataclass(frozen=True)
class DigestDeps:
    """What digest runs need from the running bot, and nothing more."""

    current_settings: Callable[[], Settings]  # read at every run, so a reloaded feeds.yaml applies at once
    store: Store  # digest runs, build leases, and the outbox rows of a run
    worker_id: str  # owner of the leases and run claims this process takes
    enqueue: Enqueue
    llm: LLMSummariser | None = None  # None: digests go out without an overview


def scheduled_fire_time(cfg: DigestConfig, now: datetime) -> datetime | None:
    """The digest's most recent scheduled fire time at or before `now` (None if none in 8 years).

    CronTrigger only computes forwards, so look back an expanding distance and step forwards. The
    result is the key of a run: the same instant for every worker, however late it asks.
    """
    now = aware_utc(now)
    trigger = build_cron_trigger(cfg.cron, cfg.timezone)
    lookback = timedelta(hours=1)
    while lookback <= _MAX_LOOKBACK * 2:
        fire = trigger.get_next_fire_time(None, now - min(lookback, _MAX_LOOKBACK))
        if fire is not None and fire <= now:
            while True:
                following = trigger.get_next_fire_time(fire, now)
                if following is None or following > now:
                    return _first_of_repeated_time(cfg, fire)
                fire = following
        if lookback >= _MAX_LOOKBACK:
            return None
        lookback *= 2
    return None


def _first_of_repeated_time(cfg: DigestConfig, fire: datetime) -> datetime:
    """A fixed-hour cron's fire at the second pass of a repeated wall-clock time is its first pass.

    APScheduler fires "30 2 * * *" at both 02:30s of the fall-back night; standard cron runs a
    fixed-time job once then, and a digest posted twice in an hour would be a double.
    """
    local = fire.astimezone(zone(cfg.timezone))
    hour_field = cfg.cron.split()[1] if len(cfg.cron.split()) == 5 else "*"
    if local.fold == 0 or "*" in hour_field:
        return fire
    first = local.replace(fold=0).astimezone(timezone.utc)
    return first if first < fire else fire


def digest_day(cfg: DigestConfig, scheduled_for: datetime) -> str:
    """The run's day in the digest's own timezone: 08:00 in Shanghai is the day before in UTC."""
    return aware_utc(scheduled_for).astimezone(zone(cfg.timezone)).strftime("%Y-%m-%d")


def digest_run_id(cfg: DigestConfig, scheduled_for: datetime) -> str:
    """One run per scheduled fire time, named by that time in UTC to the minute (cron's resolution)."""
    return f"{cfg.name}@{aware_utc(scheduled_for):%Y-%m-%dT%H:%MZ}"


def day_run_id(cfg: DigestConfig, scheduled_for: datetime) -> str:
    """The day key "<name>:<YYYY-MM-DD>" that runs were recorded under before keys named the fire time."""
    return f"{cfg.name}:{digest_day(cfg, scheduled_for)}"


def _is_first_fire_of_day(cfg: DigestConfig, fire: datetime) -> bool:
    previous = scheduled_fire_time(cfg, fire - timedelta(microseconds=1))
    return previous is None or digest_day(cfg, previous) != digest_day(cfg, fire)


def recorded_run(store: Store, cfg: DigestConfig, fire: datetime) -> dict | None:
    """The stored run that covers this fire, if any.

    A day-keyed record ("<name>:<YYYY-MM-DD>", one per digest and local day) stays valid: it covers
    that day's first fire, the one the day key was claimed for on an ordinary day, and the fire it
    names in `scheduled_for` (the day's first fire may have been missed). Later fires of that day
    are new runs. So a worker upgraded mid-day does not post the day's 08:00 digest again, and
    does post its 20:00 one.
    """
    fire = aware_utc(fire)
    run = store.get_digest_run(digest_run_id(cfg, fire))
    if run is not None:
        return run
    day_run = store.get_digest_run(day_run_id(cfg, fire))
    if day_run is None:
        return None
    if aware_utc(day_run["scheduled_for"]) == fire or _is_first_fire_of_day(cfg, fire):
        return day_run
    return None


def _should_post(cfg: DigestConfig, digest: Digest) -> bool:
    """`skip_empty` skips a digest with nothing to say; failing feeds are something to say."""
    return not (cfg.skip_empty and digest.empty and not digest.failing_feeds)


def _build_lease(run_id: str) -> str:
    return f"digest:{run_id}"


async def _build_claim_and_queue(deps: DigestDeps, cfg: DigestConfig, scheduled_for: datetime,
                                 run_id: str) -> bool:
    """With the build lease held: build, claim the run, queue it. True if this call queued it."""
    if recorded_run(deps.store, cfg, scheduled_for) is not None:  # finished elsewhere before our lease
        DIGEST_RUNS.labels(outcome="already-done").inc()
        return False
    digest = build_digest(deps.current_settings(), deps.store, cfg, now=scheduled_for, window=cfg.window)
    digest = await add_overview(deps.llm, digest)
    day = digest_day(cfg, scheduled_for)
    if not deps.store.claim_digest_run(cfg.name, day, scheduled_for, deps.worker_id, digest.to_json_dict(),
                                       run_id=run_id):
        DIGEST_RUNS.labels(outcome="already-done").inc()
        return False
    if not _should_post(cfg, digest):
        log.info("digest %s: window empty and skip_empty set, nothing posted", run_id)
        DIGEST_RUNS.labels(outcome="skipped-empty").inc()
        return False
    deps.enqueue("digest", run_id, [str(t) for t in cfg.to])
    log.info("digest %s: queued for %s", run_id, ", ".join(t.redacted for t in cfg.to))
    DIGEST_RUNS.labels(outcome="posted").inc()
    return True


async def run_digest(deps: DigestDeps, cfg: DigestConfig, scheduled_for: datetime) -> bool:
    """Build and queue the digest for the fire time `scheduled_for`, once across workers and restarts.

    The window ends at the scheduled time (not at the late start of a catch-up), so consecutive
    digests tile time and two workers would build the same content. Returns True if this call
    queued the digest for delivery.
    """
    scheduled_for = aware_utc(scheduled_for)
    run_id = digest_run_id(cfg, scheduled_for)
    if recorded_run(deps.store, cfg, scheduled_for) is not None:
        DIGEST_RUNS.labels(outcome="already-done").inc()
        return False
    lease = _build_lease(run_id)
    if not deps.store.try_lease(lease, deps.worker_id, BUILD_LEASE):
        DIGEST_RUNS.labels(outcome="in-flight-elsewhere").inc()
        return False
    try:
        return await _build_claim_and_queue(deps, cfg, scheduled_for, run_id)
    finally:
        deps.store.release_lease(lease, deps.worker_id)


def _requeue_if_lost(deps: DigestDeps, cfg: DigestConfig, run: dict) -> None:
    """A worker that died between claiming a run and queueing it leaves a run without outbox rows.

    Only once its build lease is free (expired or released), so a worker still between the two
    steps is left alone. Queueing is unique per (kind, ref, target): this never posts twice.
    """
    doc = run.get("doc")
    if not doc or not _should_post(cfg, Digest.model_validate(doc)):
        return
    if deps.store.outbox_rows(ref_id=run["id"]):
        return
    lease = _build_lease(run["id"])
    if not deps.store.try_lease(lease, deps.worker_id, BUILD_LEASE):
        return
    try:
        if not deps.store.outbox_rows(ref_id=run["id"]):
            log.warning("digest %s: claimed but never queued (worker died?); queueing now", run["id"])
            deps.enqueue("digest", run["id"], [str(t) for t in cfg.to])
    finally:
        deps.store.release_lease(lease, deps.worker_id)


async def catch_up_digests(deps: DigestDeps, now: datetime | None = None) -> list[str]:
    """Run every digest whose latest fire time is within its grace and has not run yet.

    Covers the bot being down at fire time (down at 08:00, up at 08:40: posted once) and the
    scheduler's own misfires. Only the latest fire is caught up: older missed ones are coalesced
    into it, as the scheduler coalesces misfires, so a minutely digest down for an hour posts one
    digest on restart rather than sixty. Returns the run ids this call queued.
    """
    now = aware_utc(now or utcnow())
    posted: list[str] = []
    for cfg in deps.current_settings().digests:
        try:
            fire = scheduled_fire_time(cfg, now)
            if fire is None or now - fire > cfg.grace:
                continue
            run = recorded_run(deps.store, cfg, fire)
            if run is not None:
                _requeue_if_lost(deps, cfg, run)
                continue
            if await run_digest(deps, cfg, fire):
                posted.append(digest_run_id(cfg, fire))
        except Exception:  # one broken digest must not stop the others
            DIGEST_RUNS.labels(outcome="error").inc()
            log.exception("digest %s: catch-up failed", cfg.name)
    return posted


async def _run_scheduled(deps: DigestDeps, name: str, now: datetime | None = None) -> None:
    """Cron job body. The digest is looked up by name so a reloaded config applies at once.

    APScheduler does not pass the scheduled time, so recompute it from the trigger (the job may
    run up to `grace` late, still before the next fire). `now` is the clock, for tests."""
    cfg = next((d for d in deps.current_settings().digests if d.name == name), None)
    if cfg is None:
        return
    fire = scheduled_fire_time(cfg, aware_utc(now or utcnow()))
    if fire is None:
        return
    try:
        await run_digest(deps, cfg, fire)
    except Exception:  # a failed run is counted and logged; the next fire or catch-up tries again
        DIGEST_RUNS.labels(outcome="error").inc()
        log.exception("digest %s: run for %s failed", cfg.name, fire.isoformat())


def add_digest_jobs(scheduler: BaseScheduler, deps: DigestDeps) -> None:
    """One cron job per digest, plus a catch-up job at start and every minute.

    Safe to call again after a config reload: jobs are replaced, and those of removed digests go.
    """
    digests = deps.current_settings().digests
    wanted = {f"{_JOB_PREFIX}{cfg.name}" for cfg in digests}
    for job in scheduler.get_jobs():
        stale_digest = job.id.startswith(_JOB_PREFIX) and job.id not in wanted
        if stale_digest or (job.id == CATCH_UP_JOB_ID and not digests):
            scheduler.remove_job(job.id)
    for cfg in digests:
        scheduler.add_job(
            _run_scheduled,
            trigger=build_cron_trigger(cfg.cron, cfg.timezone),
            args=[deps, cfg.name],
            id=f"{_JOB_PREFIX}{cfg.name}",
            name=f"digest {cfg.name}",
            misfire_grace_time=max(1, int(cfg.grace.total_seconds())),
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )
    if digests and scheduler.get_job(CATCH_UP_JOB_ID) is not None:
        # Reload: the running catch-up job keeps its schedule but runs with the new deps (LLM).
        scheduler.modify_job(CATCH_UP_JOB_ID, args=[deps])
    elif digests:
        scheduler.add_job(
            catch_up_digests,
            trigger="interval",
            seconds=int(CATCH_UP_EVERY.total_seconds()),
            args=[deps],
            id=CATCH_UP_JOB_ID,
            name="digest catch-up",
            next_run_time=datetime.now(timezone.utc),
            coalesce=True,
            max_instances=1,
        )
