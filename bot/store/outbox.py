"""The delivery outbox: one row per (kind, ref, target), claimed with a lease so a crashed
worker's rows go back to the pool once the lease runs out.

A follow-up row (kind `follow_up`) tells one later source of a posted story to one target; its ref is
`<brief id>#<source index>`, so each source is queued once per target however often it is looked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, literal, or_, select, update

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine, as_utc


@dataclass
class OutboxRow:
    id: int
    kind: str
    ref_id: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    external_id: str | None
    created: datetime
    sources_shown: int | None = None
    figures_shown: int | None = None
    sent_at: datetime | None = None
    link: str | None = None  # where a person opens the posted message, when its adapter could say


def outbox_row(row) -> OutboxRow:
    """An OutboxRow from a row of the outbox table (every column selected)."""
    m = row._mapping
    return OutboxRow(
        id=m["id"], kind=m["kind"], ref_id=m["ref_id"], target=m["target"], status=m["status"],
        attempts=m["attempts"], next_attempt_at=as_utc(m["next_attempt_at"]), last_error=m["last_error"],
        external_id=m["external_id"], created=as_utc(m["created"]),
        sources_shown=m["sources_shown"], figures_shown=m["figures_shown"], sent_at=as_utc(m["sent_at"]),
        link=m["link"],
    )


FOLLOW_UP = "follow_up"


def follow_up_ref(brief_id: str, source_index: int) -> str:
    return f"{brief_id}#{source_index}"


def parse_follow_up_ref(ref_id: str) -> tuple[str, int] | None:
    """(brief id, source index) of a follow-up row's ref, or None when it is not one."""
    brief_id, sep, index = ref_id.rpartition("#")
    return (brief_id, int(index)) if sep and brief_id and index.isdigit() else None


def outbox_insert_rows(kind: str, ref_id: str, targets: list[str], now: datetime) -> list[dict]:
    return [dict(kind=kind, ref_id=ref_id, target=target, status="pending", attempts=0, created=now,
                 next_attempt_at=now) for target in targets]


_o = t.outbox.c


class OutboxStore(StoreEngine):
    def enqueue(self, kind: str, ref_id: str, targets: list[str], now: datetime | None = None) -> None:
        # A delivery is unique per (kind, ref, target): queuing it again is a no-op.
        with self.engine.begin() as c:
            self._insert_ignoring_duplicates(c, t.outbox, outbox_insert_rows(kind, ref_id, targets, now or utcnow()))

    def claim_outbox(self, owner: str, lease: timedelta, limit: int = 50,
                     now: datetime | None = None) -> list[OutboxRow]:
        """Claim due pending rows, oldest first, each with a per-row conditional UPDATE."""
        now = now or utcnow()
        free = or_(_o.lease_until.is_(None), _o.lease_until < now)
        with self.engine.connect() as c:
            ids = [r[0] for r in c.execute(
                select(_o.id).where(_o.status == "pending", _o.next_attempt_at <= now, free)
                .order_by(_o.id).limit(limit)).all()]
        claimed: list[OutboxRow] = []
        for row_id in ids:
            with self.engine.begin() as c:
                # Re-checked in the UPDATE: another worker may have sent, retried (later due) or
                # leased the row since the SELECT above.
                res = c.execute(update(t.outbox).where(_o.id == row_id, _o.status == "pending",
                                                       _o.next_attempt_at <= now, free)
                                .values(lease_owner=owner, lease_until=now + lease))
                if res.rowcount == 1:
                    row = c.execute(select(t.outbox).where(_o.id == row_id)).first()
                    claimed.append(outbox_row(row))
        return claimed

    def outbox_attempt(self, row_id: int, shown: tuple[int, int] | None = None) -> None:
        """Count an attempt *before* sending, so a crash mid-send is visible on the next try.

        `shown`: how many of its story's sources and figures this attempt's message shows. Of several
        attempts the smallest counts: the one that landed showed at least that much, so a source is at
        worst told twice, never left untold."""
        values: dict = {"attempts": _o.attempts + 1}
        if shown is not None:
            for column, count in zip((_o.sources_shown, _o.figures_shown), shown):
                values[column.key] = case((column.is_(None), literal(count)), (column < count, column),
                                          else_=literal(count))
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(_o.id == row_id).values(**values))

    def outbox_sent(self, row_id: int, external_id: str | None = None, now: datetime | None = None,
                    link: str | None = None) -> None:
        """`link`: where a person opens the posted message, when its adapter can say."""
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(_o.id == row_id).values(
                status="sent", sent_at=now or utcnow(), external_id=external_id, link=link, last_error=None,
                lease_owner=None, lease_until=None))

    def outbox_retry(self, row_id: int, error: str, next_attempt_at: datetime) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(_o.id == row_id).values(
                status="pending", last_error=error[:2000], next_attempt_at=next_attempt_at,
                lease_owner=None, lease_until=None))

    def outbox_failed(self, row_id: int, error: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(_o.id == row_id).values(
                status="failed", last_error=error[:2000], lease_owner=None, lease_until=None))

    def requeue_failed(self, queued_after: datetime | None = None, row_id: int | None = None) -> int:
        """Put failed rows back in the queue; with `queued_after`, only rows queued since then, so
        a retry does not post old news; with `row_id`, only that row. Returns how many."""
        q = update(t.outbox).where(_o.status == "failed")
        if queued_after is not None:
            q = q.where(_o.created >= queued_after)
        if row_id is not None:
            q = q.where(_o.id == row_id)
        with self.engine.begin() as c:
            res = c.execute(q.values(
                status="pending", next_attempt_at=utcnow(), lease_owner=None, lease_until=None))
        return res.rowcount

    def outbox_rows(self, status: str | None = None, ref_id: str | None = None) -> list[OutboxRow]:
        q = select(t.outbox).order_by(_o.id)
        if status:
            q = q.where(_o.status == status)
        if ref_id:
            q = q.where(_o.ref_id == ref_id)
        with self.engine.connect() as c:
            return [outbox_row(r) for r in c.execute(q).all()]

    def sent_since(self, targets: list[str], since: datetime, kind: str = "brief") -> dict[str, list[datetime]]:
        """Per target, when each of its `kind` rows was sent since `since`, oldest first (the hourly cap)."""
        if not targets:
            return {}
        q = (select(_o.target, _o.sent_at).where(_o.status == "sent", _o.kind == kind, _o.sent_at >= since,
                                                 _o.target.in_(sorted(set(targets))))
             .order_by(_o.sent_at))
        out: dict[str, list[datetime]] = {}
        with self.engine.connect() as c:
            for target, sent_at in c.execute(q).all():
                out.setdefault(target, []).append(as_utc(sent_at))
        return out

    def posted_stories_changed(self, since: datetime) -> list[tuple[OutboxRow, dict]]:
        """Sent brief rows whose story changed, or which were sent, since `since`, and whose story
        now has sources their message did not show; each with the story's document."""
        # A story's sources are its brief_sources rows: only stories with more than were shown are read.
        sources = select(func.count()).where(t.brief_sources.c.brief_id == _o.ref_id).scalar_subquery()
        base = (select(t.outbox, t.briefs.c.doc).join(t.briefs, t.briefs.c.id == _o.ref_id)
                .where(_o.kind == "brief", _o.status == "sent", _o.sources_shown < sources))
        found: dict[int, tuple[OutboxRow, dict]] = {}
        with self.engine.connect() as c:
            for q in (base.where(t.briefs.c.updated >= since), base.where(_o.sent_at >= since)):
                for r in c.execute(q).all():
                    found[r.id] = (outbox_row(r), r.doc)
        return [found[row_id] for row_id in sorted(found)]

    def enqueue_follow_ups(self, wanted: list[tuple[str, int, str]], now: datetime | None = None) -> int:
        """Queue a follow-up per (brief id, source index, target) not queued yet; returns how many were new."""
        keys = list(dict.fromkeys((follow_up_ref(brief_id, index), target) for brief_id, index, target in wanted))
        if not keys:
            return 0
        with self.engine.begin() as c:
            queued = set(c.execute(select(_o.ref_id, _o.target).where(
                _o.kind == FOLLOW_UP, _o.ref_id.in_(sorted({ref for ref, _ in keys})))).all())
            rows = [row for ref, target in keys if (ref, target) not in queued
                    for row in outbox_insert_rows(FOLLOW_UP, ref, [target], now or utcnow())]
            self._insert_ignoring_duplicates(c, t.outbox, rows)
        return len(rows)

    def delivery(self, kind: str, ref_id: str, target: str) -> OutboxRow | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.outbox).where(_o.kind == kind, _o.ref_id == ref_id, _o.target == target)).first()
        return outbox_row(row) if row else None

    def figures_shown_to(self, brief_id: str, target: str, before_source: int) -> int:
        """How many of a story's figures `target` has been shown: by its brief, and by the follow-ups
        of the sources before `before_source` that were sent."""
        refs = [follow_up_ref(brief_id, i) for i in range(before_source)]
        q = select(func.max(_o.figures_shown)).where(
            _o.target == target, _o.status == "sent",
            or_((_o.kind == "brief") & (_o.ref_id == brief_id), (_o.kind == FOLLOW_UP) & _o.ref_id.in_(refs)))
        with self.engine.connect() as c:
            return c.execute(q).scalar() or 0

    def outbox_backlog(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(t.outbox).where(_o.status == "pending")).scalar_one()
