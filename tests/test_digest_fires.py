"""Digests that fire more than once a day: every scheduled fire time posts exactly once.

Workers here are the real thing minus the clock: a Store, the digest deps the app builds, and the
jobs `add_digest_jobs` gives the scheduler (the cron job and the catch-up job), called with `now`
passed in. A "restart" is a new worker on the same database; the race runs on the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pg import pg_server, pg_url  # noqa: F401  (pytest fixtures)

from bot.app.container import App, make_digest_deps
from bot.config import Env, Settings
from bot.config.cron import build_cron_trigger
from bot.digest import add_digest_jobs, catch_up_digests, digest_run_id
from bot.digest.build import build_digest
from bot.digest.schedule import day_run_id
from bot.store import Store, as_utc

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
TARGETS = ["slack:C0ONCALL1", "jsonl:out/digest.jsonl"]


def settings_for(cron: str, tz: str = "Asia/Shanghai", **digest: object) -> Settings:
    entry = {"name": "oncall", "cron": cron, "timezone": tz, "to": TARGETS, **digest}
    topics = {"tariff": {"label": {"en": "Tariffs", "zh": "关税"}, "keywords": ["tariff", "关税"]}}
    return Settings.model_validate({"topics": topics, "digests": [entry]})


class Worker:
    """One bot process: its own store connection and worker id, and the scheduler's digest jobs."""

    def __init__(self, settings: Settings, url: str, worker_id: str) -> None:
        store = Store(url)
        store.create()
        self.app = App(settings=settings, env=Env.from_environ({}), store=store, worker_id=worker_id)
        self.deps = make_digest_deps(self.app)
        scheduler = AsyncIOScheduler(timezone=UTC)
        add_digest_jobs(scheduler, self.deps)
        self.jobs = {job.id: job for job in scheduler.get_jobs()}
        self.cfg = settings.digests[0]

    async def cron_job(self, now: datetime) -> None:
        job = self.jobs[f"digest:{self.cfg.name}"]
        await job.func(*job.args, now=now)

    async def catch_up(self, now: datetime) -> list[str]:
        return await catch_up_digests(self.deps, now)

    async def live(self, start: datetime, end: datetime, every: timedelta = timedelta(minutes=10)) -> None:
        """Up from `start` to `end`: the catch-up job every `every` from start, and the cron job at each
        fire (on time, and once more late, as a misfire re-run would)."""
        events = [(start + i * every, "catch-up") for i in range(int((end - start) / every) + 1)]
        for fire in fires_between(self.cfg.cron, self.cfg.timezone, start, end):
            events += [(fire, "cron"), (fire + timedelta(minutes=3), "cron")]
        for when, kind in sorted(events, key=lambda e: e[0]):
            if when <= end:
                await (self.cron_job(when) if kind == "cron" else self.catch_up(when))

    def close(self) -> None:
        self.app.store.close()


def fires_between(cron: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """The trigger's own fire times in [start, end], as APScheduler would run the cron job."""
    trigger = build_cron_trigger(cron, tz)
    out: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= end:
        # In UTC: adding to a zone-aware time is wall-clock arithmetic, which drops the second pass
        # of a repeated fall-back hour back to the first.
        fire = fire.astimezone(UTC)
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return out


def key(fire: datetime) -> str:
    return f"oncall@{fire.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def posts(store: Store) -> Counter:
    """Queued deliveries per run id, over all targets: a run posted once has one row per target."""
    return Counter(row.ref_id for row in store.outbox_rows())


def assert_posted_once_each(store: Store, expected: list[str]) -> None:
    assert posts(store) == Counter({run_id: len(TARGETS) for run_id in expected})
    assert sorted(r["id"] for r in store.digest_runs("oncall")) == sorted(expected)


# --------------------------------------------------------------------------- several fires a day

async def test_twice_daily_digest_posts_every_fire_once(db_url):
    worker = Worker(settings_for("0 8,20 * * *"), db_url, "worker-a")
    start = datetime(2026, 12, 1, 6, 0, tzinfo=SHANGHAI)
    await worker.live(start, start + timedelta(days=3))
    expected = [key(datetime(2026, 12, d, h, 0, tzinfo=SHANGHAI)) for d in (1, 2, 3) for h in (8, 20)]
    assert expected[:2] == ["oncall@2026-12-01T00:00Z", "oncall@2026-12-01T12:00Z"]
    assert_posted_once_each(worker.app.store, expected)
    # Each run's window ends at its own fire time, so consecutive digests tile the day.
    ends = sorted(as_utc(r["scheduled_for"]) for r in worker.app.store.digest_runs("oncall"))
    assert [b - a for a, b in zip(ends, ends[1:])] == [timedelta(hours=12)] * 5


async def test_hourly_digest_posts_every_fire_once(db_url):
    worker = Worker(settings_for("0 * * * *", "UTC"), db_url, "worker-a")
    start = datetime(2026, 12, 2, 5, 30, tzinfo=UTC)
    await worker.live(start, start + timedelta(hours=6), every=timedelta(minutes=7))
    expected = [key(datetime(2026, 12, 2, h, 0, tzinfo=UTC)) for h in range(5, 12)]  # 05:00 caught up at start
    assert_posted_once_each(worker.app.store, expected)


async def test_every_minute_digest_posts_every_minute(db_url):
    worker = Worker(settings_for("* * * * *", "UTC"), db_url, "worker-a")
    start = datetime(2026, 12, 2, 9, 0, 30, tzinfo=UTC)
    await worker.live(start, start + timedelta(minutes=5), every=timedelta(seconds=20))
    expected = [key(datetime(2026, 12, 2, 9, m, tzinfo=UTC)) for m in range(6)]
    assert_posted_once_each(worker.app.store, expected)


# --------------------------------------------------------------------------- restarts and grace

async def test_restart_catches_up_a_missed_fire_once(db_url):
    settings = settings_for("0 8,20 * * *", grace="2h")
    first = Worker(settings, db_url, "worker-a")
    await first.live(datetime(2026, 12, 2, 7, 0, tzinfo=SHANGHAI), datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI))
    first.close()  # down across the 20:00 fire
    morning, evening = datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI), datetime(2026, 12, 2, 20, 0, tzinfo=SHANGHAI)

    second = Worker(settings, db_url, "worker-b")
    assert await second.catch_up(evening + timedelta(minutes=40)) == [key(evening)]
    run = second.app.store.get_digest_run(key(evening))
    assert as_utc(run["scheduled_for"]) == evening and run["owner"] == "worker-b"
    await second.live(evening + timedelta(minutes=41), evening + timedelta(minutes=50))
    second.close()
    third = Worker(settings, db_url, "worker-c")  # a second restart, still within grace: nothing again
    assert await third.catch_up(evening + timedelta(minutes=55)) == []
    assert_posted_once_each(third.app.store, [key(morning), key(evening)])

    # Down across the next morning's fire for longer than grace: that fire is not posted late,
    # and the evening fire after it is posted as usual.
    next_morning = morning + timedelta(days=1)
    assert await third.catch_up(next_morning + timedelta(hours=2, minutes=1)) == []
    await third.live(next_morning + timedelta(hours=2, minutes=1), evening + timedelta(days=1, minutes=1))
    assert_posted_once_each(third.app.store, [key(morning), key(evening), key(evening + timedelta(days=1))])


async def test_restart_after_a_long_outage_posts_only_the_latest_fire(db_url):
    """Two fires missed, both within grace: the latest is posted once, the older is coalesced into it."""
    settings = settings_for("0 * * * *", "UTC", grace="3h")
    worker = Worker(settings, db_url, "worker-a")
    back = datetime(2026, 12, 2, 11, 20, tzinfo=UTC)  # down since before 10:00
    assert await worker.catch_up(back) == ["oncall@2026-12-02T11:00Z"]
    await worker.live(back, back + timedelta(minutes=30))
    assert_posted_once_each(worker.app.store, ["oncall@2026-12-02T11:00Z"])


# --------------------------------------------------------------------------- several workers

def test_two_workers_racing_for_each_fire_post_once(pg_url):
    settings = settings_for("0 * * * *", "UTC")
    workers = [Worker(settings, pg_url, f"worker-{i}") for i in range(2)]
    fires = [datetime(2026, 12, 2, h, 0, tzinfo=UTC) for h in range(8, 14)]
    for fire in fires:
        barrier = threading.Barrier(len(workers))
        errors: list[BaseException] = []

        def run(worker: Worker, fire: datetime = fire, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=30)
                # Each worker's cron job and its catch-up both go for the same fire at once.
                asyncio.run(worker.cron_job(fire + timedelta(seconds=1)))
                asyncio.run(worker.catch_up(fire + timedelta(seconds=2)))
            except BaseException as exc:  # asserted below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert not any(th.is_alive() for th in threads) and errors == []
        assert posts(workers[0].app.store)[key(fire)] == len(TARGETS), fire
    assert_posted_once_each(workers[0].app.store, [key(f) for f in fires])
    for worker in workers:
        worker.close()


# --------------------------------------------------------------------------- runs recorded under the day key

async def test_day_keyed_run_covers_the_days_first_fire(db_url):
    """A run recorded as "<name>:<YYYY-MM-DD>" stands for that day's first fire: a worker upgraded
    mid-day does not post the morning digest again, and posts the evening one."""
    settings = settings_for("0 8,20 * * *")
    worker = Worker(settings, db_url, "upgraded")
    cfg = settings.digests[0]
    morning, evening = datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI), datetime(2026, 12, 2, 20, 0, tzinfo=SHANGHAI)
    doc = build_digest(settings, worker.app.store, cfg, now=morning).to_json_dict()
    assert day_run_id(cfg, morning) == "oncall:2026-12-02"
    # Recorded as a day-keyed run was: no run_id, the fire time in UTC (SQLite keeps no offset).
    assert worker.app.store.claim_digest_run("oncall", "2026-12-02", morning.astimezone(UTC), "old-worker", doc)
    worker.app.store.enqueue("digest", "oncall:2026-12-02", TARGETS)

    assert await worker.catch_up(morning + timedelta(minutes=5)) == []
    await worker.live(morning + timedelta(minutes=5), evening + timedelta(hours=1))
    assert posts(worker.app.store) == Counter({"oncall:2026-12-02": 2, key(evening): 2})
    # The next day's first fire is a new run: the day key covers its own day only.
    await worker.live(morning + timedelta(days=1, minutes=-5), morning + timedelta(days=1, minutes=30))
    assert posts(worker.app.store)[key(morning + timedelta(days=1))] == 2


async def test_day_keyed_run_also_covers_the_fire_it_names(db_url):
    """The day's first fire was missed and the day key was claimed by the evening fire: neither
    fire is posted again."""
    settings = settings_for("0 8,20 * * *")
    worker = Worker(settings, db_url, "upgraded")
    cfg = settings.digests[0]
    evening = datetime(2026, 12, 2, 20, 0, tzinfo=SHANGHAI)
    doc = build_digest(settings, worker.app.store, cfg, now=evening).to_json_dict()
    assert worker.app.store.claim_digest_run("oncall", "2026-12-02", evening.astimezone(UTC), "old-worker", doc)
    worker.app.store.enqueue("digest", "oncall:2026-12-02", TARGETS)
    await worker.live(evening + timedelta(minutes=1), evening + timedelta(hours=2))
    assert posts(worker.app.store) == Counter({"oncall:2026-12-02": 2})
    assert digest_run_id(cfg, evening) == "oncall@2026-12-02T12:00Z"


# --------------------------------------------------------------------------- daylight saving (Europe/Berlin)

async def test_daily_digest_across_both_dst_changes(db_url):
    """08:00 in Berlin on the last Sundays of March and October 2026: one post per local 08:00."""
    worker = Worker(settings_for("0 8 * * *", "Europe/Berlin"), db_url, "worker-a")
    for first_day in (datetime(2026, 3, 27, tzinfo=BERLIN), datetime(2026, 10, 23, tzinfo=BERLIN)):
        await worker.live(first_day, first_day + timedelta(days=4))
    runs = worker.app.store.digest_runs("oncall")
    local = [as_utc(r["scheduled_for"]).astimezone(BERLIN) for r in runs]
    assert [t.strftime("%m-%d %H:%M") for t in local] == [
        "03-27 08:00", "03-28 08:00", "03-29 08:00", "03-30 08:00",
        "10-23 08:00", "10-24 08:00", "10-25 08:00", "10-26 08:00"]
    # The key is the UTC instant: 07:00Z in winter time, 06:00Z in summer time.
    assert [r["id"] for r in runs] == [
        "oncall@2026-03-27T07:00Z", "oncall@2026-03-28T07:00Z", "oncall@2026-03-29T06:00Z",
        "oncall@2026-03-30T06:00Z", "oncall@2026-10-23T06:00Z", "oncall@2026-10-24T06:00Z",
        "oncall@2026-10-25T07:00Z", "oncall@2026-10-26T07:00Z"]
    assert set(posts(worker.app.store).values()) == {len(TARGETS)}


async def test_time_in_the_spring_forward_gap_posts_once_an_hour_later(db_url):
    """02:30 does not exist in Berlin on 29 March 2026 (02:00 → 03:00): that day's digest is posted
    once, at 03:30 summer time (01:30 UTC, when 02:30 winter time would have been)."""
    worker = Worker(settings_for("30 2 * * *", "Europe/Berlin"), db_url, "worker-a")
    start = datetime(2026, 3, 27, 12, 0, tzinfo=BERLIN)
    await worker.live(start, start + timedelta(days=4), every=timedelta(minutes=5))
    local = [as_utc(r["scheduled_for"]).astimezone(BERLIN) for r in worker.app.store.digest_runs("oncall")]
    assert [t.isoformat() for t in local] == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]
    assert set(posts(worker.app.store).values()) == {len(TARGETS)}


async def test_time_in_the_repeated_fall_back_hour_posts_once(db_url):
    """02:30 happens twice in Berlin on 25 October 2026: a fixed-hour digest posts at the first."""
    worker = Worker(settings_for("30 2 * * *", "Europe/Berlin"), db_url, "worker-a")
    start = datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)
    await worker.live(start, start + timedelta(days=2), every=timedelta(minutes=5))
    assert [r["id"] for r in worker.app.store.digest_runs("oncall")] == [
        "oncall@2026-10-25T00:30Z", "oncall@2026-10-26T01:30Z"]
    assert set(posts(worker.app.store).values()) == {len(TARGETS)}


async def test_hourly_digest_posts_every_real_hour_across_fall_back(db_url):
    """An hour field of `*` tiles real time: the repeated hour is two runs, one per real hour."""
    worker = Worker(settings_for("0 * * * *", "Europe/Berlin"), db_url, "worker-a")
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 00:00 CEST on the night of the change
    await worker.live(start, start + timedelta(hours=6), every=timedelta(minutes=15))
    assert [r["id"] for r in worker.app.store.digest_runs("oncall")] == [
        f"oncall@2026-10-{d:02d}T{h:02d}:00Z" for d, h in [(24, 22), (24, 23), (25, 0), (25, 1), (25, 2),
                                                           (25, 3), (25, 4)]]
