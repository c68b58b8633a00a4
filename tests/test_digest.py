"""The on-call digest: cron maths, ranking, content, console form, exactly-once runs, LLM overview."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from storedata import save_brief
from waits import async_wait_until

from bot.app.container import App, make_digest_deps
from bot.config import Env, Settings
from bot.config.cron import build_cron_trigger
from bot.digest import (
    BUILD_LEASE,
    add_digest_jobs,
    add_overview,
    build_digest,
    catch_up_digests,
    digest_languages,
    digest_run_id,
    digest_titles,
    nothing_new_line,
    overview_paragraphs,
    rank_briefs,
    render_digest_text,
    run_digest,
    scheduled_fire_time,
    section_headlines,
    story_parts,
)
from bot.digest.schedule import day_run_id
from bot.models import Brief, Digest, Figure, Source, utcnow
from bot.store import ItemRecord, Store, as_utc
from bot.summarise.llm import LLMSummariser
from fakes.openai_server import FakeOpenAI, chat_json, server_error

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")

# Monday 11 March 2024, 08:00 in Shanghai (= 00:00 UTC), and its run: keyed by the fire time in UTC.
MONDAY_8AM_SH = datetime(2024, 3, 11, 8, 0, tzinfo=SHANGHAI)
MONDAY_RUN = "oncall@2024-03-11T00:00Z"

TOPICS = {
    "rare-earth": {"label": {"en": "Rare earths", "zh": "稀土"}, "keywords": ["rare earth", "稀土"]},
    "tariff": {"label": {"en": "Tariffs", "zh": "关税"}, "keywords": ["tariff", "关税"]},
}


def make_settings(topic_cfg: dict | None = None, **digest: object) -> Settings:
    entry = {"name": "oncall", "cron": "0 8 * * 1-5", "timezone": "Asia/Shanghai",
             "topics": ["rare-earth", "tariff"], "to": ["slack:C0ONCALL1", "jsonl:out/digest.jsonl"]}
    entry.update(digest)
    return Settings.model_validate({"topics": topic_cfg or TOPICS, "digests": [entry]})


def make_app(settings: Settings, db_url: str, worker: str = "worker-a") -> App:
    store = Store(db_url)
    store.create()
    return App(settings=settings, env=Env.from_environ({}), store=store, worker_id=worker)


def make_brief(key: str, topics: list[str], title_en: str, title_zh: str, created: datetime, *,
               figures: list[tuple[str, str, str]] = (), outlets: int = 1,
               summary_en: str = "", summary_zh: str = "") -> Brief:
    created = created.astimezone(UTC)  # as the pipeline stores them
    return Brief(
        id=f"b_{key}",
        topics=topics,
        title={"en": title_en, "zh": title_zh},
        summary={"en": summary_en or title_en + ".", "zh": summary_zh or title_zh + "。"},
        figures=[Figure(text=text, label={"en": en, "zh": zh}) for text, en, zh in figures],
        sources=[Source(url=f"https://news{i}.example.org/{key}", feed=f"feed{i}", title=title_en,
                        published=created - timedelta(minutes=5)) for i in range(outlets)],
        mode="extractive",
        created=created,
    )


def save(store: Store, brief: Brief) -> None:
    record = ItemRecord(feed=brief.sources[0].feed, item_key=brief.id, guid=brief.id, link=brief.primary_url,
                        link_key=None, content_key=None, title=brief.title["en"], published=brief.created,
                        status="briefed", topics=brief.topics)
    assert save_brief(store, brief, record, targets=[], signature=None, now=brief.created)


def seed_stories(store: Store, end: datetime) -> dict[str, Brief]:
    """Four stories in the 24 h before `end`, one older story outside the window."""
    briefs = {
        "quota": make_brief("quota", ["rare-earth"], "China trims rare earth mining quota",
                            "中国下调稀土开采配额", end - timedelta(hours=10),
                            figures=[("12%", "quota cut", "配额降幅")], outlets=3),
        "magnet": make_brief("magnet", ["rare-earth"], "Magnet maker adds neodymium line",
                             "磁材企业新增钕铁硼产线", end - timedelta(hours=1),
                             figures=[("4,000 tonnes", "annual capacity", "年产能")]),
        "steel": make_brief("steel", ["tariff"], "US raises steel tariff on three countries",
                            "美国对三国钢材加征关税", end - timedelta(hours=3),
                            figures=[("25%", "tariff rate", "税率"), ("90 days", "grace period", "宽限期")],
                            outlets=2),
        "both": make_brief("both", ["tariff", "rare-earth"], "EU weighs duties on rare earth magnets",
                           "欧盟考虑对稀土磁体征收关税", end - timedelta(hours=20)),
        "old": make_brief("old", ["tariff"], "Old tariff story", "旧的关税新闻", end - timedelta(hours=30)),
    }
    for brief in briefs.values():
        save(store, brief)
    return briefs


def fires(trigger, start: datetime, count: int) -> list[datetime]:
    out, prev = [], None
    now = start
    for _ in range(count):
        nxt = trigger.get_next_fire_time(prev, now)
        out.append(nxt)
        prev = now = nxt
    return out


# --------------------------------------------------------------------------- cron maths

def test_weekday_cron_in_shanghai_fires_monday_to_friday_at_8_local():
    trigger = build_cron_trigger("0 8 * * 1-5", "Asia/Shanghai")
    got = fires(trigger, datetime(2024, 3, 8, 9, 0, tzinfo=SHANGHAI), 10)  # after Friday's run
    assert [f.strftime("%a %d") for f in got] == ["Mon 11", "Tue 12", "Wed 13", "Thu 14", "Fri 15",
                                                 "Mon 18", "Tue 19", "Wed 20", "Thu 21", "Fri 22"]
    assert all((f.hour, f.minute) == (8, 0) for f in got)
    # No DST in Shanghai: always 00:00 UTC.
    assert {f.astimezone(UTC).hour for f in got} == {0}


def test_new_york_digest_follows_dst_changes():
    trigger = build_cron_trigger("0 8 * * *", "America/New_York")
    spring = fires(trigger, datetime(2024, 3, 9, 0, 0, tzinfo=NEW_YORK), 3)
    assert [(f.day, f.hour) for f in spring] == [(9, 8), (10, 8), (11, 8)]
    # 08:00 EST is 13:00 UTC; after the spring-forward on 10 March, 08:00 EDT is 12:00 UTC.
    assert [f.astimezone(UTC).hour for f in spring] == [13, 12, 12]
    autumn = fires(trigger, datetime(2024, 11, 2, 0, 0, tzinfo=NEW_YORK), 3)
    assert [f.astimezone(UTC).strftime("%d %H") for f in autumn] == ["02 12", "03 13", "04 13"]


def test_scheduled_fire_time_is_latest_fire_at_or_before_now():
    cfg = make_settings().digests[0]
    monday_0840 = MONDAY_8AM_SH + timedelta(minutes=40)
    assert scheduled_fire_time(cfg, monday_0840) == MONDAY_8AM_SH
    assert scheduled_fire_time(cfg, MONDAY_8AM_SH) == MONDAY_8AM_SH
    # Before Monday's run, and over the weekend, the latest fire is Friday's.
    friday = datetime(2024, 3, 8, 8, 0, tzinfo=SHANGHAI)
    assert scheduled_fire_time(cfg, MONDAY_8AM_SH - timedelta(minutes=1)) == friday
    assert scheduled_fire_time(cfg, datetime(2024, 3, 9, 20, 0, tzinfo=SHANGHAI)) == friday
    # Naive input is taken as UTC.
    assert scheduled_fire_time(cfg, datetime(2024, 3, 11, 0, 30)) == MONDAY_8AM_SH


def test_scheduled_fire_time_across_dst_and_for_rare_crons():
    ny = make_settings(cron="0 8 * * *", timezone="America/New_York").digests[0]
    # Just after the first EDT run (12:00 UTC), not the EST time of 13:00 UTC.
    got = scheduled_fire_time(ny, datetime(2024, 3, 10, 12, 5, tzinfo=UTC))
    assert got == datetime(2024, 3, 10, 8, 0, tzinfo=NEW_YORK)
    assert got.astimezone(UTC).hour == 12
    assert scheduled_fire_time(ny, datetime(2024, 3, 10, 11, 55, tzinfo=UTC)).day == 9
    minutely = make_settings(cron="* * * * *").digests[0]
    assert scheduled_fire_time(minutely, datetime(2024, 3, 11, 5, 7, 30, tzinfo=UTC)) == \
        datetime(2024, 3, 11, 5, 7, tzinfo=UTC)
    yearly = make_settings(cron="30 6 1 1 *").digests[0]
    assert scheduled_fire_time(yearly, datetime(2024, 3, 11, tzinfo=UTC)) == \
        datetime(2024, 1, 1, 6, 30, tzinfo=SHANGHAI)


# --------------------------------------------------------------------------- ranking and content

def test_ranking_prefers_more_sources_then_figures_then_recency():
    settings = make_settings()
    now = MONDAY_8AM_SH
    one_source_recent = make_brief("a", ["tariff"], "A", "甲", now - timedelta(hours=1))
    three_sources_old = make_brief("b", ["tariff"], "B", "乙", now - timedelta(hours=20), outlets=3)
    figures_same_age = make_brief("c", ["tariff"], "C", "丙", now - timedelta(hours=1),
                                  figures=[("5%", "x", "x"), ("7 tonnes", "y", "y")])
    older_same_shape = make_brief("d", ["tariff"], "D", "丁", now - timedelta(hours=6))
    ranked = rank_briefs([older_same_shape, one_source_recent, three_sources_old, figures_same_age],
                         settings, now)
    assert [b.id for b in ranked] == ["b_b", "b_c", "b_a", "b_d"]


def test_topic_weight_lifts_a_topic():
    now = MONDAY_8AM_SH
    rare = make_brief("r", ["rare-earth"], "R", "稀", now - timedelta(hours=2))
    tariff = make_brief("t", ["tariff"], "T", "关", now - timedelta(hours=2), outlets=2)
    plain = make_settings()
    assert [b.id for b in rank_briefs([rare, tariff], plain, now)] == ["b_t", "b_r"]
    weighted = dict(TOPICS, **{"rare-earth": dict(TOPICS["rare-earth"], weight=3.0)})
    assert [b.id for b in rank_briefs([rare, tariff], make_settings(weighted), now)] == ["b_r", "b_t"]


def test_digest_groups_ranked_stories_by_topic_with_counts(db_url):
    settings = make_settings()
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(settings, app.store, settings.digests[0], now=MONDAY_8AM_SH)

    assert digest.title == {"en": "oncall digest — Mon 11 Mar 2024",
                            "zh": "oncall 摘要 — 2024年3月11日（周一）"}
    assert digest.window_end == MONDAY_8AM_SH and digest.window_start == MONDAY_8AM_SH - timedelta(hours=24)
    by_topic = {s.topic: s for s in digest.sections}
    assert [s.topic for s in digest.sections] == ["rare-earth", "tariff"]
    # The story tagged with both topics is counted in both but listed once, under its first topic.
    assert by_topic["rare-earth"].count == 3 and by_topic["tariff"].count == 2
    assert [b.id for b in by_topic["rare-earth"].briefs] == ["b_quota", "b_magnet"]
    assert [b.id for b in by_topic["tariff"].briefs] == ["b_steel", "b_both"]
    assert "b_old" not in {b.id for s in digest.sections for b in s.briefs}
    # Briefs are reused as stored: no new text, no new figures.
    stored = app.store.get_brief("b_steel")
    assert by_topic["tariff"].briefs[0] == stored


def test_max_items_keeps_the_most_important(db_url):
    settings = make_settings(max_items=2)
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(settings, app.store, settings.digests[0], now=MONDAY_8AM_SH)
    listed = [b.id for s in digest.sections for b in s.briefs]
    assert sorted(listed) == ["b_quota", "b_steel"]
    assert {s.topic: s.count for s in digest.sections} == {"rare-earth": 3, "tariff": 2}


def test_digest_topics_restrict_content(db_url):
    settings = make_settings(topics=["tariff"])
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(settings, app.store, settings.digests[0], now=MONDAY_8AM_SH)
    assert [s.topic for s in digest.sections] == ["tariff"]
    assert [b.id for b in digest.sections[0].briefs] == ["b_steel", "b_both"]


def test_adhoc_digest_for_slash_command(db_url):
    settings = make_settings()
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = app.commands.digest_now(now=MONDAY_8AM_SH)
    assert digest.title == {"en": "Digest — last 24 h", "zh": "摘要 — 过去24小时"}
    assert sum(len(s.briefs) for s in digest.sections) == 4
    wide = build_digest(settings, app.store, None, now=MONDAY_8AM_SH, window=timedelta(hours=48))
    assert wide.title["en"] == "Digest — last 48 h"
    assert "b_old" in {b.id for s in wide.sections for b in s.briefs}


def test_console_rendering(db_url):
    settings = make_settings()
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(settings, app.store, settings.digests[0], now=MONDAY_8AM_SH)
    text = render_digest_text(digest)
    lines = text.splitlines()
    assert lines[0] == "══ oncall digest — Mon 11 Mar 2024 ══"
    assert lines[1].strip() == "oncall 摘要 — 2024年3月11日（周一）"
    assert "2024-03-10 08:00 → 2024-03-11 08:00 (Asia/Shanghai)" in text
    assert "Rare earths: 3 stories / 稀土：3 条" in lines
    assert "Tariffs: 2 stories / 关税：2 条" in lines
    assert "  1. China trims rare earth mining quota — 12% (quota cut) · 3 sources" in lines
    assert "     中国下调稀土开采配额 — 12%（配额降幅） · 3 个来源" in lines
    # A story without figures or extra sources is just its title.
    assert "  2. EU weighs duties on rare earth magnets" in lines
    assert "     https://news0.example.org/quota" in lines
    # Ranked order inside a section.
    assert text.index("China trims") < text.index("Magnet maker")
    assert "\x1b[" not in text
    assert "\x1b[1m" in render_digest_text(digest, color=True)


def test_shared_pieces_follow_the_configured_languages(db_url):
    """Every renderer builds from these pieces, so each shows the same words in the same languages."""
    settings = make_settings()
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(settings, app.store, settings.digests[0], now=MONDAY_8AM_SH)
    assert digest_languages(digest) == ["en", "zh"]
    assert digest_titles(digest) == ["oncall digest — Mon 11 Mar 2024", "oncall 摘要 — 2024年3月11日（周一）"]
    rare = digest.sections[0]
    assert section_headlines(rare, ["en", "zh"]) == "Rare earths: 3 stories / 稀土：3 条"
    quota = story_parts(rare.briefs[0], "zh")
    assert (quota.title, quota.figure, quota.sources) == ("中国下调稀土开采配额", "12%（配额降幅）", "3 个来源")
    assert quota.url == "https://news0.example.org/quota"
    assert overview_paragraphs(digest) == []

    english_only = make_settings().model_copy(update={"languages": ["en"]})
    empty = build_digest(english_only, app.store, english_only.digests[0], now=MONDAY_8AM_SH + timedelta(days=5))
    assert digest_languages(empty) == ["en"]
    assert [nothing_new_line(empty, lang) for lang in digest_languages(empty)] == [
        "Nothing new in the last 24 h — briefbot is running."]
    assert "无新动态" not in render_digest_text(empty)


# --------------------------------------------------------------------------- runs: empty window

async def test_empty_window_posts_nothing_new_line(db_url):
    settings = make_settings()
    app = make_app(settings, db_url)
    cfg = settings.digests[0]
    assert await run_digest(make_digest_deps(app), cfg, MONDAY_8AM_SH) is True
    run_id = MONDAY_RUN
    rows = app.store.outbox_rows(ref_id=run_id)
    assert [(r.kind, r.target) for r in rows] == [("digest", "slack:C0ONCALL1"), ("digest", "jsonl:out/digest.jsonl")]
    digest = Digest.model_validate(app.store.get_digest_run(run_id)["doc"])
    assert digest.empty
    text = render_digest_text(digest)
    assert "Nothing new in the last 24 h — briefbot is running." in text
    assert "过去24小时无新动态 — briefbot 运行正常。" in text


async def test_empty_window_with_skip_empty_posts_nothing_but_is_recorded(db_url):
    settings = make_settings(skip_empty=True)
    app = make_app(settings, db_url)
    assert await run_digest(make_digest_deps(app), settings.digests[0], MONDAY_8AM_SH) is False
    assert app.store.outbox_rows() == []
    assert app.store.get_digest_run(MONDAY_RUN) is not None
    # Recorded means a catch-up a little later does not try again either.
    assert await catch_up_digests(make_digest_deps(app), MONDAY_8AM_SH + timedelta(minutes=30)) == []
    assert app.store.outbox_rows() == []


async def test_skip_empty_still_posts_a_non_empty_window(db_url):
    settings = make_settings(skip_empty=True)
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    assert await run_digest(make_digest_deps(app), settings.digests[0], MONDAY_8AM_SH) is True
    assert len(app.store.outbox_rows(ref_id=MONDAY_RUN)) == 2


# --------------------------------------------------------------------------- runs: exactly once

async def test_missed_digest_is_caught_up_once_within_grace(db_url):
    settings = make_settings()
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    started = MONDAY_8AM_SH + timedelta(minutes=40)  # bot was down at 08:00
    assert await catch_up_digests(make_digest_deps(app), started) == [MONDAY_RUN]
    run = app.store.get_digest_run(MONDAY_RUN)
    assert as_utc(run["scheduled_for"]) == MONDAY_8AM_SH
    # The window ends at the scheduled time, not at the late start.
    assert Digest.model_validate(run["doc"]).window_end == MONDAY_8AM_SH
    # The every-minute catch-up does not post it again.
    for minutes in (41, 42, 100):
        assert await catch_up_digests(make_digest_deps(app), MONDAY_8AM_SH + timedelta(minutes=minutes)) == []
    assert len(app.store.outbox_rows()) == 2


async def test_missed_digest_beyond_grace_is_not_posted(db_url):
    settings = make_settings(grace="2h")
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    assert await catch_up_digests(make_digest_deps(app), MONDAY_8AM_SH + timedelta(hours=3)) == []
    assert app.store.outbox_rows() == [] and app.store.digest_runs() == []
    # Just inside a longer grace it would have been.
    longer = make_app(make_settings(grace="4h"), db_url)
    assert await catch_up_digests(make_digest_deps(longer), MONDAY_8AM_SH + timedelta(hours=3)) == [MONDAY_RUN]


async def test_restart_after_posting_does_not_post_again(db_url):
    settings = make_settings()
    first = make_app(settings, db_url)
    seed_stories(first.store, MONDAY_8AM_SH)
    assert await run_digest(make_digest_deps(first), settings.digests[0], MONDAY_8AM_SH) is True
    first.store.close()

    for worker in ("worker-restarted", "worker-restarted-again"):
        again = make_app(settings, db_url, worker=worker)
        assert await run_digest(make_digest_deps(again), settings.digests[0], MONDAY_8AM_SH) is False
        assert await catch_up_digests(make_digest_deps(again), MONDAY_8AM_SH + timedelta(minutes=5)) == []
        again.store.close()
    check = Store(db_url)
    assert len(check.outbox_rows(ref_id=MONDAY_RUN)) == 2
    assert len(check.digest_runs("oncall")) == 1
    # The next weekday is a new run.
    tuesday = make_app(settings, db_url, worker="worker-tuesday")
    assert await run_digest(make_digest_deps(tuesday), settings.digests[0], MONDAY_8AM_SH + timedelta(days=1)) is True
    assert len(tuesday.store.digest_runs("oncall")) == 2


def test_two_concurrent_workers_post_once(db_url):
    settings = make_settings()
    setup = make_app(settings, db_url)
    seed_stories(setup.store, MONDAY_8AM_SH)
    workers = [make_app(settings, db_url, worker=f"worker-{i}") for i in range(4)]
    barrier = threading.Barrier(len(workers))
    results: dict[str, bool] = {}

    def work(app: App) -> None:
        barrier.wait()
        results[app.worker_id] = asyncio.run(run_digest(make_digest_deps(app), settings.digests[0], MONDAY_8AM_SH))

    threads = [threading.Thread(target=work, args=(app,)) for app in workers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert sorted(results.values()) == [False, False, False, True]
    rows = setup.store.outbox_rows(ref_id=MONDAY_RUN)
    assert sorted(r.target for r in rows) == ["jsonl:out/digest.jsonl", "slack:C0ONCALL1"]
    winner = next(w for w, posted in results.items() if posted)
    assert setup.store.get_digest_run(MONDAY_RUN)["owner"] == winner


async def test_claimed_but_never_queued_run_is_repaired_once(db_url):
    """A worker that died between claiming and queueing: catch-up queues it, and only once."""
    settings = make_settings()
    app = make_app(settings, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    cfg = settings.digests[0]
    doc = build_digest(settings, app.store, cfg, now=MONDAY_8AM_SH).to_json_dict()
    lease = f"digest:{MONDAY_RUN}"
    assert app.store.try_lease(lease, "dead-worker", BUILD_LEASE)
    assert app.store.claim_digest_run("oncall", "2024-03-11", MONDAY_8AM_SH, "dead-worker", doc, run_id=MONDAY_RUN)
    # While the claimer's build lease is live it may still be about to queue: leave it alone.
    assert await catch_up_digests(make_digest_deps(app), MONDAY_8AM_SH + timedelta(minutes=2)) == []
    assert app.store.outbox_rows() == []
    # The lease runs out (the worker is gone): the next catch-up queues it, and only once.
    assert app.store.try_lease(lease, "dead-worker", BUILD_LEASE, now=utcnow() - 2 * BUILD_LEASE)
    await catch_up_digests(make_digest_deps(app), MONDAY_8AM_SH + timedelta(minutes=20))
    await catch_up_digests(make_digest_deps(app), MONDAY_8AM_SH + timedelta(minutes=21))
    assert sorted(r.target for r in app.store.outbox_rows()) == ["jsonl:out/digest.jsonl", "slack:C0ONCALL1"]


async def test_scheduler_jobs_run_the_digest(db_url):
    """Real AsyncIOScheduler: the start-up catch-up posts the latest run of an every-minute digest,
    and the scheduler's own jobs then post every later fire once."""
    settings = make_settings(cron="* * * * *", timezone="UTC", grace="2h", to=["console"])
    app = make_app(settings, db_url)
    scheduler = AsyncIOScheduler(timezone=UTC)
    add_digest_jobs(scheduler, make_digest_deps(app))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"digest:oncall", "digests-catch-up"}
    assert jobs["digest:oncall"].misfire_grace_time == 7200 and jobs["digest:oncall"].coalesce
    assert str(jobs["digest:oncall"].trigger) == str(build_cron_trigger("* * * * *", "UTC"))
    scheduler.start()
    try:
        rows = await async_wait_until(app.store.outbox_rows, "the scheduled digest to be queued")
    finally:
        scheduler.shutdown(wait=False)
    assert len(rows) == 1 and rows[0].kind == "digest" and rows[0].target == "console"
    first = as_utc(app.store.digest_runs("oncall")[0]["scheduled_for"])
    assert rows[0].ref_id == digest_run_id(settings.digests[0], first) == f"oncall@{first:%Y-%m-%dT%H:%MZ}"
    # The next fires, with the clock passed in: the cron job and the catch-up job (both as the
    # scheduler would call them, several times each) post each fire once.
    for minute in range(1, 4):
        fire = first + timedelta(minutes=minute)
        for job_id, late in (("digest:oncall", 0), ("digest:oncall", 20), ("digests-catch-up", 40)):
            await jobs[job_id].func(*jobs[job_id].args, now=fire + timedelta(seconds=late))
        ids = [r.ref_id for r in app.store.outbox_rows()]
        assert ids[-1] == f"oncall@{fire:%Y-%m-%dT%H:%MZ}" and len(ids) == len(set(ids)) == minute + 1


def test_run_id_is_the_fire_time_in_utc_and_the_day_key_uses_the_digest_timezone_day():
    cfg = make_settings().digests[0]
    assert digest_run_id(cfg, MONDAY_8AM_SH) == MONDAY_RUN
    assert digest_run_id(cfg, datetime(2024, 3, 11, 8, 0)) == "oncall@2024-03-11T08:00Z"  # naive is UTC
    # 23:30 UTC on Sunday is already Monday in Shanghai.
    assert day_run_id(cfg, datetime(2024, 3, 10, 23, 30, tzinfo=UTC)) == "oncall:2024-03-11"
    ny = make_settings(timezone="America/New_York").digests[0]
    assert day_run_id(ny, datetime(2024, 3, 11, 3, 0, tzinfo=UTC)) == "oncall:2024-03-10"


# --------------------------------------------------------------------------- LLM overview (loopback fake server)

@pytest.fixture
def fake_llm():
    with FakeOpenAI() as fake:
        yield fake


async def llm_app(fake, db_url: str, settings: Settings | None = None) -> App:
    settings = settings or make_settings()
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(
        update={"max_retries": 0, "timeout": timedelta(seconds=5)})})
    app = make_app(settings, db_url)
    env = Env.from_environ({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test-digest-key"})
    app.llm = LLMSummariser(settings, env, app.store, backoff_base=0.01)
    return app


def overview_reply(en: str, zh: str):
    return chat_json({"overview": {"en": en, "zh": zh}})


async def test_grounded_overview_is_kept_and_prompt_carries_the_stories(db_url, fake_llm):
    app = await llm_app(fake_llm, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(app.settings, app.store, app.settings.digests[0], now=MONDAY_8AM_SH)
    en = "China cut its rare earth mining quota by 12%. The US set a 25% steel tariff with a 90 days grace period."
    zh = "中国将稀土开采配额下调12%。美国对钢材征收25%关税，宽限期90天。"
    fake_llm.queue(overview_reply(en, zh))
    try:
        with_overview = await add_overview(app.llm, digest)
    finally:
        await app.llm.aclose()
    assert with_overview.overview == {"en": en, "zh": zh}
    assert with_overview.sections == digest.sections
    body = fake_llm.bodies[0]
    user = fake_llm.message_text(body, "user")
    system = fake_llm.message_text(body, "system")
    assert "<stories>" in user and "China trims rare earth mining quota" in user and "4,000 tonnes" in user
    assert "en, zh" in system and "Rare earths" in system
    assert en.split(".")[0] in render_digest_text(with_overview)


async def test_overview_with_invented_number_is_cut(db_url, fake_llm):
    app = await llm_app(fake_llm, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(app.settings, app.store, app.settings.digests[0], now=MONDAY_8AM_SH)
    fake_llm.queue(overview_reply(
        "China cut its rare earth mining quota by 12%. Prices jumped 37% on the news. Tariffs dominated the day.",
        "中国将稀土开采配额下调12%。消息传出后价格上涨37%。关税是当天焦点。"))
    try:
        got = (await add_overview(app.llm, digest)).overview
    finally:
        await app.llm.aclose()
    assert got == {"en": "China cut its rare earth mining quota by 12%. Tariffs dominated the day.",
                   "zh": "中国将稀土开采配额下调12%。关税是当天焦点。"}
    assert "37" not in str(got)


async def test_overview_with_only_invented_numbers_is_dropped(db_url, fake_llm):
    app = await llm_app(fake_llm, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    digest = build_digest(app.settings, app.store, app.settings.digests[0], now=MONDAY_8AM_SH)
    fake_llm.queue(overview_reply("Exports fell 41% in total.", "出口总计下降41%。"))
    try:
        got = await add_overview(app.llm, digest)
    finally:
        await app.llm.aclose()
    assert got.overview is None
    assert "41" not in render_digest_text(got)


async def test_overview_skipped_without_llm_or_on_llm_failure(db_url, fake_llm):
    settings = make_settings()
    plain = make_app(settings, db_url)
    seed_stories(plain.store, MONDAY_8AM_SH)
    digest = build_digest(settings, plain.store, settings.digests[0], now=MONDAY_8AM_SH)
    assert (await add_overview(None, digest)).overview is None  # no LLM configured: extractive digest

    app = await llm_app(fake_llm, db_url)
    fake_llm.queue(server_error(500))
    try:
        got = await add_overview(app.llm, digest)
    finally:
        await app.llm.aclose()
    assert got.overview is None and got.sections == digest.sections
    assert fake_llm.calls == 1
    # An empty digest has nothing to summarise: no call at all.
    empty = build_digest(settings, plain.store, settings.digests[0], now=MONDAY_8AM_SH + timedelta(days=5))
    assert (await add_overview(app.llm, empty)).overview is None and fake_llm.calls == 1


async def test_run_digest_stores_the_grounded_overview(db_url, fake_llm):
    app = await llm_app(fake_llm, db_url)
    seed_stories(app.store, MONDAY_8AM_SH)
    fake_llm.queue(overview_reply("Steel tariffs rose to 25%, up from 10%.", "钢材关税升至25%。"))
    try:
        assert await run_digest(make_digest_deps(app), app.settings.digests[0], MONDAY_8AM_SH) is True
    finally:
        await app.llm.aclose()
    doc = Digest.model_validate(app.store.get_digest_run(MONDAY_RUN)["doc"])
    # "10%" is in no brief: the whole English sentence goes; the Chinese one stands.
    assert doc.overview == {"zh": "钢材关税升至25%。"}


def test_digest_jobs_follow_a_config_reload(db_url):
    app = make_app(make_settings(), db_url)
    scheduler = AsyncIOScheduler(timezone=UTC)
    add_digest_jobs(scheduler, make_digest_deps(app))
    app.settings = Settings.model_validate({"topics": TOPICS, "digests": [
        {"name": "evening", "cron": "30 18 * * 1-5", "timezone": "America/New_York", "to": ["console"],
         "grace": "30m"}]})
    add_digest_jobs(scheduler, make_digest_deps(app))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"digest:evening", "digests-catch-up"}
    assert jobs["digest:evening"].misfire_grace_time == 1800
    assert str(jobs["digest:evening"].trigger) == str(build_cron_trigger("30 18 * * 1-5", "America/New_York"))
    app.settings = Settings.model_validate({"topics": TOPICS})
    add_digest_jobs(scheduler, make_digest_deps(app))
    assert scheduler.get_jobs() == []


async def test_cron_job_runs_the_latest_scheduled_digest(db_url):
    settings = make_settings(to=["console"])
    cfg = settings.digests[0]
    app = make_app(settings, db_url)
    scheduler = AsyncIOScheduler(timezone=UTC)
    add_digest_jobs(scheduler, make_digest_deps(app))
    job = scheduler.get_job("digest:oncall")
    before = scheduled_fire_time(cfg, utcnow())
    await job.func(*job.args)
    await job.func(*job.args)  # a second firing the same day posts nothing more
    after = scheduled_fire_time(cfg, utcnow())
    runs = app.store.digest_runs("oncall")
    assert len(runs) == 1 and as_utc(runs[0]["scheduled_for"]) in {before, after}
    assert [r.target for r in app.store.outbox_rows()] == ["console"]
