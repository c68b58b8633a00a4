"""The delivery outbox: one row per (kind, ref, target), claimed with a lease so a crashed
worker's rows go back to the pool once the lease runs out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

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


def _row_to_outbox(row) -> OutboxRow:
    m = row._mapping
    return OutboxRow(
        id=m["id"], kind=m["kind"], ref_id=m["ref_id"], target=m["target"], status=m["status"],
        attempts=m["attempts"], next_attempt_at=as_utc(m["next_attempt_at"]), last_error=m["last_error"],
        external_id=m["external_id"], created=as_utc(m["created"]),
    )


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
                    claimed.append(_row_to_outbox(row))
        return claimed

    def outbox_attempt(self, row_id: int) -> None:
        """Count an attempt *before* sending, so a crash mid-send is visible on the next try."""
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(_o.id == row_id).values(attempts=_o.attempts + 1))

    def outbox_sent(self, row_id: int, external_id: str | None = None, now: datetime | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.outbox).where(_o.id == row_id).values(
                status="sent", sent_at=now or utcnow(), external_id=external_id, last_error=None,
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

    def requeue_failed(self, queued_after: datetime | None = None) -> int:
        """Put failed rows back in the queue; with `queued_after`, only rows queued since then, so
        a retry does not post old news."""
        q = update(t.outbox).where(_o.status == "failed")
        if queued_after is not None:
            q = q.where(_o.created >= queued_after)
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
            return [_row_to_outbox(r) for r in c.execute(q).all()]

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

    def outbox_backlog(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(t.outbox).where(_o.status == "pending")).scalar_one()
