"""Choose and rank the window's stories into a `Digest`: top stories per topic, bilingual titles.

Content is assembled from stored briefs only (their titles, figures and links), so a digest never
introduces a number of its own.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import DigestConfig, Settings
from bot.digest.clock import aware_utc, hours_text, zone
from bot.models import Bilingual, Brief, Digest, DigestSection, FeedTrouble, HeldBack, utcnow
from bot.store import Store

DEFAULT_WINDOW = timedelta(hours=24)
ADHOC_MAX_ITEMS = 10

# Ranking weights (see importance): more outlets outweigh more figures, and recency breaks near-ties.
_SOURCE_POINTS = 2.0
_FIGURE_POINTS = 0.5
_MAX_FIGURES_COUNTED = 4
_RECENCY_POINTS = 2.0
_RECENCY_HALF_LIFE_HOURS = 12.0

# Names spelled out: strftime's %a/%b follow the process locale.
_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZH_DAYS = "一二三四五六日"


def _last_activity(brief: Brief, now: datetime) -> datetime:
    """When the story last moved: created, or a later source's publication (not in the future)."""
    times = [aware_utc(brief.created)]
    times += [aware_utc(s.published) for s in brief.sources if s.published and aware_utc(s.published) <= now]
    return max(times)


def importance(brief: Brief, settings: Settings, now: datetime) -> float:
    """Outlets covering the story, key figures, recency, all scaled by the heaviest topic weight."""
    now = aware_utc(now)
    outlets = len({(s.feed, s.url) for s in brief.sources}) or 1
    figures = min(len(brief.figures), _MAX_FIGURES_COUNTED)
    age_hours = max(0.0, (now - _last_activity(brief, now)).total_seconds() / 3600)
    recency = _RECENCY_POINTS * math.pow(0.5, age_hours / _RECENCY_HALF_LIFE_HOURS)
    weights = [settings.topics[t].weight for t in brief.topics if t in settings.topics]
    weight = max(weights) if weights else 1.0
    return weight * (_SOURCE_POINTS * outlets + _FIGURE_POINTS * figures + recency)


def rank_briefs(briefs: list[Brief], settings: Settings, now: datetime) -> list[Brief]:
    """Most important first; ties go to the more recent story, then to the id (stable output)."""
    now = aware_utc(now)
    scored = [(importance(b, settings, now), _last_activity(b, now), b.id, b) for b in briefs]
    scored.sort(key=lambda x: (-x[0], -x[1].timestamp(), x[2]))
    return [b for *_, b in scored]


def _titles(settings: Settings, cfg: DigestConfig | None, window_end: datetime, window: timedelta,
            tz: ZoneInfo) -> Bilingual:
    """A scheduled digest is titled by its day; the ad-hoc one by its window length."""
    local = window_end.astimezone(tz)
    hours = hours_text(window)
    titles: Bilingual = {}
    for lang in settings.languages:
        if cfg is None:
            titles[lang] = f"Digest — last {hours} h" if lang == "en" else f"摘要 — 过去{hours}小时"
        elif lang == "en":
            titles[lang] = (f"{cfg.name} digest — {_EN_DAYS[local.weekday()]} {local.day} "
                            f"{_EN_MONTHS[local.month - 1]} {local.year}")
        else:
            weekday = _ZH_DAYS[local.weekday()]
            titles[lang] = f"{cfg.name} 摘要 — {local.year}年{local.month}月{local.day}日（周{weekday}）"
    return titles


def _sections(settings: Settings, topics: list[str], ranked: list[Brief], max_items: int) -> list[DigestSection]:
    """Each story is listed once, under the first of its topics that the digest covers; a topic's
    count includes every story of the window tagged with it."""
    counts = {topic: sum(1 for b in ranked if topic in b.topics) for topic in topics}
    chosen: dict[str, list[Brief]] = {topic: [] for topic in topics}
    for brief in ranked[:max_items]:
        home = next((t for t in brief.topics if t in chosen), None)
        if home is not None:
            chosen[home].append(brief)
    return [
        DigestSection(topic=topic, label={lang: settings.topic_label(topic, lang) for lang in settings.languages},
                      count=counts[topic], briefs=chosen[topic])
        for topic in topics
    ]


def held_back(store: Store, topics: list[str], start: datetime, end: datetime) -> list[HeldBack]:
    """Per feed, the on-topic items the flood guard held back in the window (any of `topics`), so an
    item that was never briefed still reaches on-call once, as a count."""
    counts: dict[str, int] = {}
    seen_topics: dict[str, list[str]] = {}
    for feed, item_topics in store.held_between(start, end):
        mine = [topic for topic in item_topics if topic in topics]
        if not mine:
            continue
        counts[feed] = counts.get(feed, 0) + 1
        known = seen_topics.setdefault(feed, [])
        known += [topic for topic in mine if topic not in known]
    return [HeldBack(feed=feed, count=count, topics=seen_topics[feed]) for feed, count in sorted(counts.items())]


def feed_troubles(settings: Settings, store: Store) -> list[FeedTrouble]:
    """The polled feeds that are switched off or whose last fetch failed, by name."""
    return [FeedTrouble(feed=s.name, failures=s.failures, disabled=bool(s.disabled_reason),
                        last_success=s.last_success_at)
            for s in store.troubled_feeds({f.name for f in settings.polled_feeds})]


def build_digest(settings: Settings, store: Store, cfg: DigestConfig | None, *, now: datetime,
                 window: timedelta | None = None) -> Digest:
    """The digest of the window ending at `now`.

    `cfg` None is the ad-hoc digest (`/brief digest`): all topics, ADHOC_MAX_ITEMS stories, and a
    title naming the window length instead of a date.
    """
    now = aware_utc(now)
    window = window or (cfg.window if cfg else DEFAULT_WINDOW)
    topics = list(cfg.topics) if cfg and cfg.topics is not None else list(settings.topics)
    max_items = cfg.max_items if cfg else ADHOC_MAX_ITEMS
    tz_name = cfg.timezone if cfg else settings.timezone
    start = now - window
    ranked = rank_briefs(store.briefs_between(start, now, topics), settings, now)
    return Digest(
        name=cfg.name if cfg else "adhoc",
        title=_titles(settings, cfg, now, window, zone(tz_name)),
        window_start=start,
        window_end=now,
        timezone=tz_name,
        sections=_sections(settings, topics, ranked, max_items),
        held=held_back(store, topics, start, now),
        feeds_total=len(settings.polled_feeds),
        failing_feeds=feed_troubles(settings, store),
        created=utcnow(),
    )
