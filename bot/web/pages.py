"""What each page shows, read from the store and the settings; the templates lay it out.

Everything here is plain data: text from feeds, the model or chat stays text (the templates escape
it), error texts lose their URLs and any secret, and targets are shown as the adapters show them."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from bot.commands import CommandService, UsageError, check_words
from bot.ingest.urls import hide_urls
from bot.config import DigestConfig, Settings, build_cron_trigger, format_duration, parse_duration
from bot.digest import build_digest
from bot.models import Brief, Digest, utcnow
from bot.store import OutboxRow
from bot.web import queries
from bot.web.chart import bar_chart
from bot.web.deps import DashboardDeps

STATUSES = ("pending", "sent", "failed")
LONGEST_FILTER = timedelta(days=3650)


@dataclass
class FeedRow:
    name: str
    status: str
    last_fetch: datetime | None
    next_poll: datetime | None
    failures: int
    last_error: str | None
    items: int
    enabled: bool


def feed_rows(deps: DashboardDeps) -> list[FeedRow]:
    """Every configured feed, in feeds.yaml order, with its stored health (never its URL)."""
    settings = deps.settings()
    health = {h.name: h for h in CommandService(settings, deps.store).feeds_health()}
    rows = []
    for feed in settings.feeds:
        h = health.get(feed.name)
        if h is None:
            rows.append(FeedRow(feed.name, "never polled", None, None, 0, None, 0, feed.enabled))
            continue
        error = h.disabled_reason or h.last_error
        rows.append(FeedRow(feed.name, h.status, h.last_fetch, h.next_attempt, h.failures,
                            deps.scrub(hide_urls(error)), h.items, feed.enabled))
    return rows


def llm_today(deps: DashboardDeps, now: datetime) -> dict:
    settings = deps.settings()
    day = now.strftime("%Y-%m-%d")
    row = next((r for r in deps.store.llm_usage_by_day(days=2) if str(r["day"]) == day), None)
    prompt = (row or {}).get("prompt_tokens") or 0
    completion = (row or {}).get("completion_tokens") or 0
    cost = settings.llm.cost(prompt, completion)
    return {"calls": (row or {}).get("calls") or 0, "tokens": prompt + completion, "cost": f"${cost:.4f}"}


def overview(deps: DashboardDeps, now: datetime | None = None) -> dict:
    now = now or utcnow()
    settings = deps.settings()
    topics = list(settings.topics)
    counts = queries.stories_per_day(deps.store, topics, now.date())
    labels = {name: settings.topic_label(name, "en") for name in topics}
    return {"feeds": feed_rows(deps), "outbox": queries.status_counts(deps.store), "llm": llm_today(deps, now),
            "chart": bar_chart(counts, labels, now.date())}


def _instant(text: str) -> datetime | None:
    """`?before=` as written in an older-page link (ISO 8601), or None."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def brief_list(deps: DashboardDeps, q: str, topic: str, before: str = "") -> dict:
    settings = deps.settings()
    topic = topic if topic in settings.topics else ""
    error, older = None, None
    words = q.split()
    before_at = _instant(before) if before else None
    if before and before_at is None:
        error = f"before: not a time: {before[:40]!r}"
    try:
        check_words(words)
        found = queries.find_briefs(deps.store, words, topic or None, before_at)
        briefs, older = found.briefs, found.older_before
    except UsageError as exc:
        briefs, error = [], f"search: {exc}"
    return {"briefs": briefs, "q": q, "topic": topic, "error": error,
            "older": older.isoformat() if older else None,
            "topics": [(name, settings.topic_label(name, "en"), settings.topic_label(name, "zh"))
                       for name in settings.topics]}


def _in_time_order(brief: Brief) -> list:
    far = datetime.max.replace(tzinfo=brief.created.tzinfo)
    return sorted(brief.sources, key=lambda s: s.published or far)


def brief_page(deps: DashboardDeps, brief_id: str) -> dict | None:
    brief = deps.store.get_brief(brief_id)
    if brief is None:
        return None
    deliveries = [shown_delivery(deps, d) for d in queries.brief_deliveries(deps.store, brief_id)]
    follow_ups = [{**shown_delivery(deps, d), "source": brief.sources[i] if i < len(brief.sources) else None}
                  for i, d in queries.follow_ups(deps.store, brief_id)]
    return {"brief": brief, "sources": _in_time_order(brief), "deliveries": deliveries, "follow_ups": follow_ups}


def shown_delivery(deps: DashboardDeps, d: OutboxRow) -> dict:
    return {"id": d.id, "kind": d.kind, "ref_id": d.ref_id, "target": deps.show_target(d.target),
            "status": d.status, "attempts": d.attempts, "created": d.created, "sent_at": d.sent_at,
            "last_error": deps.scrub(hide_urls(d.last_error)), "external_id": deps.scrub(d.external_id),
            "link": web_link(deps.scrub(d.link)), "next_attempt_at": d.next_attempt_at}


def web_link(link: str | None) -> str | None:
    """`link` if it is one a page may draw (http or https), else None."""
    return link if link and urlsplit(link).scheme.lower() in ("http", "https") else None


def delivery_filters(deps: DashboardDeps, status: str, target: str, since: str) -> tuple[dict, str | None]:
    """The filters as asked, or an error naming the one that cannot be read."""
    settings = deps.settings()
    targets = {deps.show_target(str(t)): str(t) for t in settings.all_targets()}
    chosen = {"status": status if status in STATUSES else "", "target": target if target in targets else "",
              "since": since, "since_value": None, "targets": sorted(targets)}
    error = None
    if since:
        try:
            chosen["since_value"] = parse_duration(since, longest=LONGEST_FILTER)
        except ValueError as exc:
            chosen["since"], error = "", f"since: {exc}"
    chosen["target_value"] = targets.get(chosen["target"])
    return chosen, error


def delivery_list(deps: DashboardDeps, status: str, target: str, since: str) -> dict:
    filters, error = delivery_filters(deps, status, target, since)
    cutoff = utcnow() - filters["since_value"] if filters["since_value"] else None
    rows = queries.deliveries(deps.store, filters["status"] or None, filters["target_value"], cutoff)
    return {"rows": [shown_delivery(deps, d) for d in rows], "filters": filters, "error": error,
            "statuses": STATUSES}


def retry_delivery(deps: DashboardDeps, row_id: int) -> bool:
    """Queue a failed delivery again, as `briefbot outbox --retry-failed` does; False if it had not failed."""
    return deps.store.requeue_failed(row_id=row_id) == 1


class DigestPreview:
    """Each configured digest's next issue as it stands, built again only when a story was made or
    joined, an entry recorded, its next fire time or the settings changed: building one reads and
    ranks a day of stories, far more than a page may take, while most page views find nothing changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[str, tuple[tuple, Digest]] = {}  # by digest name: (what it was built from, digest)

    def get(self, deps: DashboardDeps, settings: Settings, cfg: DigestConfig, next_fire: datetime) -> Digest:
        key = (settings, cfg, next_fire, queries.stories_version(deps.store))
        with self._lock:
            built = self._built.get(cfg.name)
            if built is None or built[0] != key:
                built = self._built[cfg.name] = (key, build_digest(settings, deps.store, cfg, now=next_fire))
            return built[1]


def digests(deps: DashboardDeps, preview: DigestPreview, now: datetime | None = None) -> dict:
    """Past runs, and what each configured digest would post at its next fire, soonest first."""
    settings = deps.settings()
    now = now or utcnow()
    upcoming = []
    for cfg in settings.digests:
        next_fire = build_cron_trigger(cfg.cron, cfg.timezone).get_next_fire_time(None, now) or now
        upcoming.append({"config": cfg, "next_fire": next_fire, "window": format_duration(cfg.window),
                         "preview": preview.get(deps, settings, cfg, next_fire)})
    upcoming.sort(key=lambda u: u["next_fire"])
    return {"runs": queries.recent_digest_runs(deps.store), "upcoming": upcoming}
