"""The on-call digest: the window's top stories per topic, bilingual, posted once per scheduled day.

Content is assembled from stored briefs only (their titles, figures and links), so a digest never
introduces a number of its own; the optional LLM overview is held to the same grounding guard as a
brief, with the included briefs as its source.

Exactly-once posting rests on the store: the unique `digest_runs` row ("<name>:<day>", day in the
digest's timezone) is the claim, and outbox rows are unique per (kind, ref, target). A named lease
only keeps two workers from both paying for the build (and the LLM call) at the same moment.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, create_model

from bot.config import DigestConfig, Settings
from bot.config.cron import build_cron_trigger
from bot.metrics import DIGEST_RUNS, GROUNDING_REJECTIONS
from bot.models import Bilingual, Brief, Digest, DigestSection, utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.app.container import App
    from bot.store import Store

log = logging.getLogger("briefbot.digest")

DEFAULT_WINDOW = timedelta(hours=24)
ADHOC_MAX_ITEMS = 10
# How long one worker may hold a digest build before another may take over (crash recovery).
BUILD_LEASE = timedelta(minutes=10)
CATCH_UP_EVERY = timedelta(minutes=1)
OVERVIEW_MAX_SENTENCES = 3
# The furthest back `scheduled_fire_time` looks: a leap-day cron fires once in 8 years.
_MAX_LOOKBACK = timedelta(days=366 * 8 + 2)

# Ranking weights (see rank_briefs).
_SOURCE_POINTS = 2.0
_FIGURE_POINTS = 0.5
_MAX_FIGURES_COUNTED = 4
_RECENCY_POINTS = 2.0
_RECENCY_HALF_LIFE_HOURS = 12.0


def _aware(dt: datetime) -> datetime:
    """Aware UTC: the store compares timestamps as UTC (SQLite keeps no offset), naive means UTC."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception:  # config validation already refuses unknown zones; never crash a render on it
        return ZoneInfo("UTC")


def _hours_text(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours:g}"


# --------------------------------------------------------------------------- ranking

def _last_activity(brief: Brief, now: datetime) -> datetime:
    """When the story last moved: created, or a later source's publication (not in the future)."""
    times = [_aware(brief.created)]
    times += [_aware(s.published) for s in brief.sources if s.published and _aware(s.published) <= now]
    return max(times)


def importance(brief: Brief, settings: Settings, now: datetime) -> float:
    """Outlets covering the story, key figures, recency, all scaled by the heaviest topic weight."""
    now = _aware(now)
    outlets = len({(s.feed, s.url) for s in brief.sources}) or 1
    figures = min(len(brief.figures), _MAX_FIGURES_COUNTED)
    age_hours = max(0.0, (now - _last_activity(brief, now)).total_seconds() / 3600)
    recency = _RECENCY_POINTS * math.pow(0.5, age_hours / _RECENCY_HALF_LIFE_HOURS)
    weights = [settings.topics[t].weight for t in brief.topics if t in settings.topics]
    weight = max(weights) if weights else 1.0
    return weight * (_SOURCE_POINTS * outlets + _FIGURE_POINTS * figures + recency)


def rank_briefs(briefs: list[Brief], settings: Settings, now: datetime) -> list[Brief]:
    """Most important first; ties go to the more recent story, then to the id (stable output)."""
    now = _aware(now)
    scored = [(importance(b, settings, now), _last_activity(b, now), b.id, b) for b in briefs]
    scored.sort(key=lambda x: (-x[0], -x[1].timestamp(), x[2]))
    return [b for *_, b in scored]


# --------------------------------------------------------------------------- building

_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _titles(settings: Settings, cfg: DigestConfig | None, window_end: datetime, window: timedelta,
            tz: ZoneInfo) -> Bilingual:
    local = window_end.astimezone(tz)
    hours = _hours_text(window)
    titles: Bilingual = {}
    for lang in settings.languages:
        if cfg is None:
            titles[lang] = f"Digest — last {hours} h" if lang == "en" else f"摘要 — 过去{hours}小时"
        elif lang == "en":
            # Names spelled out: strftime's %a/%b follow the process locale.
            titles[lang] = (f"{cfg.name} digest — {_EN_DAYS[local.weekday()]} {local.day} "
                            f"{_EN_MONTHS[local.month - 1]} {local.year}")
        else:
            weekday = "一二三四五六日"[local.weekday()]
            titles[lang] = f"{cfg.name} 摘要 — {local.year}年{local.month}月{local.day}日（周{weekday}）"
    return titles


def build_digest(settings: Settings, store: "Store", cfg: DigestConfig | None, *, now: datetime,
                 window: timedelta | None = None) -> Digest:
    """The digest of the window ending at `now`.

    `cfg` None is the ad-hoc digest (`/brief digest`): all topics, ADHOC_MAX_ITEMS stories, and a
    title naming the window length instead of a date.
    Each story is listed once, under the first of its topics that the digest covers; a topic's
    count includes every story of the window tagged with it.
    """
    now = _aware(now)
    window = window or (cfg.window if cfg else DEFAULT_WINDOW)
    topics = list(cfg.topics) if cfg and cfg.topics is not None else list(settings.topics)
    max_items = cfg.max_items if cfg else ADHOC_MAX_ITEMS
    tz_name = cfg.timezone if cfg else settings.timezone
    start = now - window

    in_window = store.briefs_between(start, now, topics)
    ranked = rank_briefs(in_window, settings, now)
    counts = {topic: sum(1 for b in ranked if topic in b.topics) for topic in topics}
    chosen: dict[str, list[Brief]] = {topic: [] for topic in topics}
    for brief in ranked[:max_items]:
        home = next((t for t in brief.topics if t in chosen), None)
        if home is not None:
            chosen[home].append(brief)

    sections = [
        DigestSection(topic=topic, label={lang: settings.topic_label(topic, lang) for lang in settings.languages},
                      count=counts[topic], briefs=chosen[topic])
        for topic in topics
    ]
    return Digest(
        name=cfg.name if cfg else "adhoc",
        title=_titles(settings, cfg, now, window, _zone(tz_name)),
        window_start=start,
        window_end=now,
        timezone=tz_name,
        sections=sections,
        created=utcnow(),
    )


# --------------------------------------------------------------------------- text pieces (shared by renderers)

def digest_languages(digest: Digest) -> list[str]:
    return list(digest.title) or ["en"]


def window_hours(digest: Digest) -> str:
    return _hours_text(_aware(digest.window_end) - _aware(digest.window_start))


def nothing_new_line(digest: Digest, lang: str) -> str:
    """What an empty digest says: on-call must still see that the bot is alive."""
    hours = window_hours(digest)
    if lang == "zh":
        return f"过去{hours}小时无新动态 — briefbot 运行正常。"
    return f"Nothing new in the last {hours} h — briefbot is running."


def section_headline(section: DigestSection, lang: str) -> str:
    """"Rare earths: 3 stories" / "稀土：3 条" — with the count of the whole window."""
    label = section.label.get(lang) or section.topic
    if lang == "zh":
        return f"{label}：{section.count} 条" if section.count else f"{label}：无新动态"
    if not section.count:
        return f"{label}: nothing new"
    return f"{label}: {section.count} stor{'y' if section.count == 1 else 'ies'}"


def story_line(brief: Brief, lang: str, *, with_link: bool = True) -> str:
    """One line of a story in one language: title — key figure (label) · N sources · link.

    Everything comes from the brief itself; the figure text is the verbatim source text.
    """
    title = brief.title.get(lang) or next(iter(brief.title.values()), brief.id)
    parts = [title]
    if brief.figures:
        fig = brief.figures[0]
        label = fig.label.get(lang)
        parts.append(f"{fig.text}（{label}）" if label and lang == "zh" else
                     f"{fig.text} ({label})" if label else fig.text)
    line = " — ".join(parts)
    outlets = len(brief.sources)
    if outlets > 1:
        line += f" · {outlets} 个来源" if lang == "zh" else f" · {outlets} sources"
    if with_link and brief.primary_url:
        line += f" {brief.primary_url}"
    return line


def window_line(digest: Digest) -> str:
    tz = _zone(digest.timezone)
    start = _aware(digest.window_start).astimezone(tz)
    end = _aware(digest.window_end).astimezone(tz)
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} ({digest.timezone})"


# --------------------------------------------------------------------------- console rendering

_BOLD, _DIM, _CYAN, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[36m", "\x1b[0m"


def render_digest_text(digest: Digest, color: bool = False) -> str:
    """The console form: title per language, window, overview, per-topic headlines and stories."""

    def style(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    langs = digest_languages(digest)
    lines: list[str] = []
    for i, lang in enumerate(langs):
        title = digest.title.get(lang, "")
        lines.append(style(f"══ {title} ══", _BOLD) if i == 0 else f"   {title}")
    lines.append(style(window_line(digest), _DIM))
    if digest.overview:
        lines.append("")
        for lang in langs:
            if digest.overview.get(lang):
                lines.append(digest.overview[lang])
    if digest.empty:
        lines.append("")
        lines.extend(nothing_new_line(digest, lang) for lang in langs)
        return "\n".join(lines)
    for section in digest.sections:
        lines.append("")
        lines.append(style(" / ".join(section_headline(section, lang) for lang in langs), _CYAN))
        for n, brief in enumerate(section.briefs, 1):
            for j, lang in enumerate(langs):
                prefix = f"  {n}. " if j == 0 else " " * (len(str(n)) + 4)
                lines.append(prefix + story_line(brief, lang, with_link=False))
            if brief.primary_url:
                lines.append(" " * (len(str(n)) + 4) + style(brief.primary_url, _DIM))
    return "\n".join(lines)


# --------------------------------------------------------------------------- LLM overview

def _overview_model(languages: list[str]) -> type[BaseModel]:
    """{"overview": {"en": str, "zh": str}} with one key per configured language (strict schema)."""
    # Validation ignores extra keys (small models add them); the schema sent is closed regardless.
    config = ConfigDict(extra="ignore")
    texts = create_model("DigestOverviewText", __config__=config, **{lang: (str, ...) for lang in languages})
    return create_model("DigestOverview", __config__=config, overview=(texts, ...))


def _briefs_source_text(digest: Digest) -> str:
    """Everything the overview may draw numbers from: the included briefs, all languages."""
    parts: list[str] = []
    for section in digest.sections:
        for brief in section.briefs:
            parts += list(brief.title.values()) + list(brief.summary.values())
            for fig in brief.figures:
                parts.append(fig.text)
                parts += list(fig.label.values())
    return "\n".join(parts)


_STORIES_TAG_RE = re.compile(r"<(\s*/?\s*stories\b)", re.I)


def _stories_for_prompt(digest: Digest) -> str:
    # No story numbers or source counts: numbers the model sees but the grounding source lacks
    # would only tempt it into sentences that get cut.
    blocks: list[str] = []
    for section in digest.sections:
        for brief in section.briefs:
            lines = [f"story — topic: {section.label.get('en') or section.topic}"]
            for lang, title in brief.title.items():
                lines.append(f"title ({lang}): {title}")
            for lang, summary in brief.summary.items():
                lines.append(f"summary ({lang}): {summary}")
            if brief.figures:
                lines.append("figures: " + "; ".join(f.text for f in brief.figures))
            blocks.append("\n".join(lines))
    # Brief text came from articles: it must not be able to close the <stories> delimiter.
    return _STORIES_TAG_RE.sub(r"‹\1", "\n\n".join(blocks))


def _grounded(text: str, source: str, lang: str) -> str:
    """The overview text with sentences carrying numbers not found in the briefs removed."""
    from bot.summarise.grounding import drop_unsupported_sentences, unsupported_numbers
    from bot.summarise.llm import neutralise_mentions

    text = neutralise_mentions(text or "")
    if not text:
        return ""
    bad = unsupported_numbers(text, source)
    if not bad:
        return text
    kept, removed = drop_unsupported_sentences(text, source, lang)
    GROUNDING_REJECTIONS.labels(what="digest-overview").inc()
    log.warning("digest overview (%s): removed %d sentence(s) with numbers not in the briefs (%s)",
                lang, len(removed), ", ".join(bad))
    return kept.strip()


async def add_overview(app: "App", digest: Digest) -> Digest:
    """Add a 2–3 sentence bilingual overview from prompts/digest.md, grounded in the included briefs.

    No LLM, an empty digest, an LLM failure, or nothing left after grounding: the digest is
    returned without an overview (an LLM outage never blocks the digest).
    """
    if getattr(app, "llm", None) is None or digest.empty:
        return digest
    languages = digest_languages(digest)
    topics = [s.label.get("en") or s.topic for s in digest.sections if s.briefs]
    variables = {
        "stories": _stories_for_prompt(digest),
        "languages": ", ".join(languages),
        "topics": ", ".join(topics),
        "window": f"{window_hours(digest)} h",
        "digest_name": digest.name,
        "max_sentences": OVERVIEW_MAX_SENTENCES,
        "reply_example": json.dumps({"overview": {lang: "..." for lang in languages}}, ensure_ascii=False),
    }
    try:
        reply = await app.llm.complete_json("digest", variables, _overview_model(languages), purpose="digest")
    except Exception as exc:  # the overview is optional; the digest goes out without it
        log.warning("digest %s: overview skipped, LLM call failed: %s", digest.name, exc)
        return digest
    if reply is None:
        return digest
    texts = reply.overview.model_dump() if hasattr(reply, "overview") else {}
    source = _briefs_source_text(digest)
    overview = {lang: kept for lang in languages if (kept := _grounded(texts.get(lang, ""), source, lang))}
    return digest.model_copy(update={"overview": overview or None})


# --------------------------------------------------------------------------- scheduling maths

def scheduled_fire_time(cfg: DigestConfig, now: datetime) -> datetime | None:
    """The digest's most recent scheduled fire time at or before `now` (None if none in 8 years).

    CronTrigger only computes forwards, so look back an expanding distance and step forwards.
    """
    now = _aware(now)
    trigger = build_cron_trigger(cfg.cron, cfg.timezone)
    lookback = timedelta(hours=1)
    while lookback <= _MAX_LOOKBACK * 2:
        fire = trigger.get_next_fire_time(None, now - min(lookback, _MAX_LOOKBACK))
        if fire is not None and fire <= now:
            while True:
                following = trigger.get_next_fire_time(fire, now)
                if following is None or following > now:
                    return fire
                fire = following
        if lookback >= _MAX_LOOKBACK:
            return None
        lookback *= 2
    return None


def digest_day(cfg: DigestConfig, scheduled_for: datetime) -> str:
    return _aware(scheduled_for).astimezone(_zone(cfg.timezone)).strftime("%Y-%m-%d")


def digest_run_id(cfg: DigestConfig, scheduled_for: datetime) -> str:
    return f"{cfg.name}:{digest_day(cfg, scheduled_for)}"


# --------------------------------------------------------------------------- running

def _should_post(cfg: DigestConfig, digest: Digest) -> bool:
    return not (cfg.skip_empty and digest.empty)


async def run_digest(app: "App", cfg: DigestConfig, scheduled_for: datetime) -> bool:
    """Build and queue the digest for `scheduled_for`, once per digest and day across workers/restarts.

    The window ends at the scheduled time (not at the late start of a catch-up), so consecutive
    digests tile time and two workers would build the same content. Returns True if this call
    queued the digest for delivery.
    """
    scheduled_for = _aware(scheduled_for)
    store = app.store
    run_id = digest_run_id(cfg, scheduled_for)
    if store.get_digest_run(run_id) is not None:
        DIGEST_RUNS.labels(outcome="already-done").inc()
        return False
    lease = f"digest:{run_id}"
    if not store.try_lease(lease, app.worker_id, BUILD_LEASE):
        DIGEST_RUNS.labels(outcome="in-flight-elsewhere").inc()
        return False
    try:
        if store.get_digest_run(run_id) is not None:  # finished by another worker before our lease
            DIGEST_RUNS.labels(outcome="already-done").inc()
            return False
        digest = build_digest(app.settings, store, cfg, now=scheduled_for, window=cfg.window)
        digest = await add_overview(app, digest)
        day = digest_day(cfg, scheduled_for)
        if not store.claim_digest_run(cfg.name, day, scheduled_for, app.worker_id, digest.to_json_dict()):
            DIGEST_RUNS.labels(outcome="already-done").inc()
            return False
        if not _should_post(cfg, digest):
            log.info("digest %s: window empty and skip_empty set, nothing posted", run_id)
            DIGEST_RUNS.labels(outcome="skipped-empty").inc()
            return False
        store.enqueue("digest", run_id, [str(t) for t in cfg.to])
        log.info("digest %s: queued for %s", run_id, ", ".join(t.redacted for t in cfg.to))
        DIGEST_RUNS.labels(outcome="posted").inc()
        return True
    finally:
        store.release_lease(lease, app.worker_id)


def _requeue_if_lost(app: "App", cfg: DigestConfig, run: dict) -> None:
    """A worker that died between claiming a run and queueing it leaves a run without outbox rows.

    Only once its build lease is free (expired or released), so a worker still between the two
    steps is left alone. Queueing is unique per (kind, ref, target): this never posts twice.
    """
    doc = run.get("doc")
    if not doc or not _should_post(cfg, Digest.model_validate(doc)):
        return
    if app.store.outbox_rows(ref_id=run["id"]):
        return
    lease = f"digest:{run['id']}"
    if not app.store.try_lease(lease, app.worker_id, BUILD_LEASE):
        return
    try:
        if not app.store.outbox_rows(ref_id=run["id"]):
            log.warning("digest %s: claimed but never queued (worker died?); queueing now", run["id"])
            app.store.enqueue("digest", run["id"], [str(t) for t in cfg.to])
    finally:
        app.store.release_lease(lease, app.worker_id)


async def catch_up_digests(app: "App", now: datetime | None = None) -> list[str]:
    """Run every digest whose latest fire time is within its grace and has not run yet.

    Covers the bot being down at fire time (down at 08:00, up at 08:40: posted once) and the
    scheduler's own misfires. Returns the run ids this call queued.
    """
    now = _aware(now or utcnow())
    posted: list[str] = []
    for cfg in app.settings.digests:
        try:
            fire = scheduled_fire_time(cfg, now)
            if fire is None or now - fire > cfg.grace:
                continue
            run = app.store.get_digest_run(digest_run_id(cfg, fire))
            if run is not None:
                _requeue_if_lost(app, cfg, run)
                continue
            if await run_digest(app, cfg, fire):
                posted.append(digest_run_id(cfg, fire))
        except Exception:  # one broken digest must not stop the others
            DIGEST_RUNS.labels(outcome="error").inc()
            log.exception("digest %s: catch-up failed", cfg.name)
    return posted


async def _run_scheduled(app: "App", name: str) -> None:
    """Cron job body. The digest is looked up by name so a reloaded config applies at once.

    APScheduler does not pass the scheduled time, so recompute it from the trigger (the job may
    run up to `grace` late, still before the next fire)."""
    cfg = next((d for d in app.settings.digests if d.name == name), None)
    if cfg is None:
        return
    fire = scheduled_fire_time(cfg, utcnow())
    if fire is None:
        return
    try:
        await run_digest(app, cfg, fire)
    except Exception:
        DIGEST_RUNS.labels(outcome="error").inc()
        log.exception("digest %s: run for %s failed", cfg.name, fire.isoformat())


_JOB_PREFIX = "digest:"
CATCH_UP_JOB_ID = "digests-catch-up"  # outside the "digest:<name>" id space


def add_digest_jobs(scheduler: "AsyncIOScheduler", app: "App") -> None:
    """One cron job per digest, plus a catch-up job at start and every minute.

    Safe to call again after a config reload: jobs are replaced, and those of removed digests go.
    """
    wanted = {f"{_JOB_PREFIX}{cfg.name}" for cfg in app.settings.digests}
    for job in scheduler.get_jobs():
        stale_digest = job.id.startswith(_JOB_PREFIX) and job.id not in wanted
        if stale_digest or (job.id == CATCH_UP_JOB_ID and not app.settings.digests):
            scheduler.remove_job(job.id)
    for cfg in app.settings.digests:
        scheduler.add_job(
            _run_scheduled,
            trigger=build_cron_trigger(cfg.cron, cfg.timezone),
            args=[app, cfg.name],
            id=f"{_JOB_PREFIX}{cfg.name}",
            name=f"digest {cfg.name}",
            misfire_grace_time=max(1, int(cfg.grace.total_seconds())),
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )
    if app.settings.digests and scheduler.get_job(CATCH_UP_JOB_ID) is None:
        scheduler.add_job(
            catch_up_digests,
            trigger="interval",
            seconds=int(CATCH_UP_EVERY.total_seconds()),
            args=[app],
            id=CATCH_UP_JOB_ID,
            name="digest catch-up",
            next_run_time=datetime.now(timezone.utc),
            coalesce=True,
            max_instances=1,
        )


__all__ = [
    "add_digest_jobs",
    "add_overview",
    "build_digest",
    "catch_up_digests",
    "digest_run_id",
    "importance",
    "nothing_new_line",
    "rank_briefs",
    "render_digest_text",
    "run_digest",
    "scheduled_fire_time",
    "section_headline",
    "story_line",
]
