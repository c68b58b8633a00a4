"""The dashboard's reads: each a bounded query on an index, so a page stays fast with 100k briefs.

Writes go through the store's own methods; these only read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, func, select

from bot.models import Brief
from bot.store import Store, as_utc
from bot.store import schema as t
from bot.store.outbox import FOLLOW_UP, OutboxRow, outbox_row, parse_follow_up_ref

PAGE_SIZE = 50
# Briefs one search page reads at most (each one's text is scanned for the words).
SEARCH_WINDOW = 10_000
DELIVERY_PAGE_SIZE = 200
DIGEST_RUNS_SHOWN = 30

_b, _bt, _o, _d = t.briefs.c, t.brief_topics.c, t.outbox.c, t.digest_runs.c


def stories_per_day(store: Store, topics: list[str], today: date, days: int = 14) -> dict[str, list[int]]:
    """Per topic, stories first briefed on each of the `days` UTC days ending with `today`, oldest first."""
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    # Both store UTC: SQLite as text "YYYY-MM-DD HH:MM:SS…", PostgreSQL in a session set to UTC.
    day = func.date(_bt.created) if store.is_postgres else func.substr(_bt.created, 1, 10)
    q = (select(_bt.topic, day.label("day"), func.count()).where(_bt.topic.in_(topics), _bt.created >= start)
         .group_by(_bt.topic, day))
    counts = {topic: [0] * days for topic in topics}
    with store.engine.connect() as c:
        for topic, on, count in c.execute(q):
            offset = (date.fromisoformat(str(on)[:10]) - first).days
            if topic in counts and 0 <= offset < days:
                counts[topic][offset] += count
    return counts


@dataclass
class Found:
    briefs: list[Brief]
    # Where the next page starts (briefs listed before this), when older ones remain: after a full
    # page, or after a search that read its SEARCH_WINDOW briefs.
    older_before: datetime | None = None


def _window_start(c, topic: str | None, before: datetime | None) -> datetime | None:
    """When the SEARCH_WINDOW-th newest brief (of the topic) before `before` was created; None when
    there are fewer. One index walk of SEARCH_WINDOW entries."""
    column = _bt.created if topic else _b.created
    q = select(column).order_by(column.desc()).offset(SEARCH_WINDOW - 1).limit(1)
    if topic:
        q = q.where(_bt.topic == topic)
    if before is not None:
        q = q.where(column < before)
    return as_utc(c.execute(q).scalar())


def find_briefs(store: Store, words: list[str], topic: str | None, before: datetime | None = None,
                limit: int = PAGE_SIZE) -> Found:
    """Newest briefs containing every word (either language, case-insensitive), of one topic or any.

    Words are matched by reading each brief's text, so one page reads at most the SEARCH_WINDOW
    newest briefs (before `before`); `Found.older_before` says where the next page starts."""
    created = _bt.created if topic else _b.created
    q = select(_b.doc, created.label("listed"))
    if topic:
        q = q.join(t.brief_topics, and_(_bt.brief_id == _b.id, _bt.topic == topic))
    q = q.order_by(created.desc())
    if before is not None:
        q = q.where(created < before)
    words = list(dict.fromkeys(w.lower() for w in words))
    for word in words:
        q = q.where(_b.search_text.contains(word, autoescape=True))
    with store.engine.connect() as c:
        start = _window_start(c, topic, before) if words else None
        if start is not None:
            q = q.where(created >= start)
        rows = c.execute(q.limit(limit)).all()
    if len(rows) == limit:
        older = as_utc(rows[-1].listed)
    else:
        older = start
    return Found([Brief.model_validate(row.doc) for row in rows], older_before=older)


def brief_deliveries(store: Store, brief_id: str) -> list[OutboxRow]:
    q = select(t.outbox).where(_o.kind == "brief", _o.ref_id == brief_id).order_by(_o.target)
    with store.engine.connect() as c:
        return [outbox_row(r) for r in c.execute(q)]


def deliveries(store: Store, status: str | None, target: str | None, since: datetime | None,
               limit: int = DELIVERY_PAGE_SIZE) -> list[OutboxRow]:
    """The newest deliveries matching the filters."""
    q = select(t.outbox).order_by(_o.id.desc()).limit(limit)
    if status:
        q = q.where(_o.status == status)
    if target:
        q = q.where(_o.target == target)
    if since is not None:
        q = q.where(_o.created >= since)
    with store.engine.connect() as c:
        return [outbox_row(r) for r in c.execute(q)]


def stories_version(store: Store) -> tuple:
    """Changes whenever a story is made or joined, or an entry is recorded (two index lookups)."""
    with store.engine.connect() as c:
        return (c.execute(select(func.max(_b.updated))).scalar(), c.execute(select(func.max(t.items.c.id))).scalar())


def status_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as c:
        return {status: c.execute(select(func.count()).select_from(t.outbox).where(_o.status == status)).scalar_one()
                for status in ("pending", "failed")}


def recent_digest_runs(store: Store, limit: int = DIGEST_RUNS_SHOWN) -> list[dict]:
    """The latest digest runs, newest first: name, fire time, and the stories the run carried."""
    q = select(_d.id, _d.name, _d.scheduled_for, _d.created, _d.doc).order_by(_d.scheduled_for.desc()).limit(limit)
    with store.engine.connect() as c:
        rows = c.execute(q).all()
    out = []
    for row in rows:
        sections = (row.doc or {}).get("sections") or []
        out.append({"id": row.id, "name": row.name, "scheduled_for": as_utc(row.scheduled_for),
                    "created": as_utc(row.created),
                    "stories": sum(len(s.get("briefs") or []) for s in sections)})
    return out


def follow_ups(store: Store, brief_id: str) -> list[tuple[int, OutboxRow]]:
    """A story's follow-up deliveries as (index of the source they tell, delivery), in source order."""
    # A range on the unique (kind, ref_id, target) index: refs are "<brief id>#<source index>".
    q = (select(t.outbox)
         .where(_o.kind == FOLLOW_UP, _o.ref_id >= f"{brief_id}#", _o.ref_id < f"{brief_id}$"))
    with store.engine.connect() as c:
        rows = [outbox_row(r) for r in c.execute(q)]
    out = []
    for row in rows:
        parsed = parse_follow_up_ref(row.ref_id)
        if parsed is not None and parsed[0] == brief_id:
            out.append((parsed[1], row))
    return sorted(out, key=lambda pair: (pair[0], pair[1].target))
