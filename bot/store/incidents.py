"""Incidents behind alerts: a feed, a chat target or the LLM failing, each open at most once per key.

An incident is opened (pending) when a failure is first seen, alerted once it has lasted its
threshold, and resolved when the failure is gone. The alert and the recovery message are outbox
rows of kind "alert" written in the same transaction as the state change, so a restart or a second
worker never queues either twice. Incident times are the check's clock (`now`); the outbox rows are
due at once by the dispatcher's, the wall clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine, as_utc
from bot.store.outbox import outbox_insert_rows

ALERT = "alert"
OPENED, RESOLVED = "open", "resolved"
LLM_FAILING_KEY = "llm:failing"
# Usage outcomes of calls that got an answer (the usage ledger records nothing else).
_ANSWERED = ("ok", "estimated")

_i = t.incidents.c
_o = t.outbox.c
_u = t.llm_usage.c


@dataclass
class Incident:
    id: int
    key: str
    kind: str
    subject: str
    detail: str | None
    started_at: datetime
    last_seen_at: datetime
    alerted_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None


def _incident(row) -> Incident:
    m = row._mapping
    return Incident(id=m["id"], key=m["key"], kind=m["kind"], subject=m["subject"], detail=m["detail"],
                    started_at=as_utc(m["started_at"]), last_seen_at=as_utc(m["last_seen_at"]),
                    alerted_at=as_utc(m["alerted_at"]), resolved_at=as_utc(m["resolved_at"]),
                    resolution=m["resolution"])


def alert_ref(incident_id: int, phase: str) -> str:
    """The outbox ref of an incident's alert ("open") or recovery ("resolved") message."""
    return f"i{incident_id}:{phase}"


def parse_alert_ref(ref_id: str) -> tuple[int, str] | None:
    number, _, phase = ref_id.partition(":")
    if not number.startswith("i") or not number[1:].isdigit() or phase not in (OPENED, RESOLVED):
        return None
    return int(number[1:]), phase


class IncidentsStore(StoreEngine):
    def open_incidents(self) -> list[Incident]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.incidents).where(_i.open_key.is_not(None)).order_by(_i.id)).all()
        return [_incident(r) for r in rows]

    def get_incident(self, incident_id: int) -> Incident | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.incidents).where(_i.id == incident_id)).first()
        return _incident(row) if row else None

    def observe_incident(self, key: str, kind: str, subject: str, detail: str | None,
                         now: datetime | None = None) -> None:
        """Record a sighting of `key`'s failure on its open incident, opening one now if there is none."""
        now = now or utcnow()
        values = dict(kind=kind, subject=subject, detail=detail[:2000] if detail else detail, last_seen_at=now)
        sighting = update(t.incidents).where(_i.open_key == key).values(**values)
        with self.engine.begin() as c:
            if c.execute(sighting).rowcount == 1:
                return
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.incidents).values(key=key, open_key=key, started_at=now, **values))
        except IntegrityError:  # another worker opened it meanwhile
            with self.engine.begin() as c:
                c.execute(sighting)

    def mark_alerted(self, incident_id: int, targets: list[str], now: datetime | None = None) -> bool:
        """Record that the incident's alert goes out and queue it to `targets`, once: False when it
        was alerted already (or resolved meanwhile)."""
        now = now or utcnow()
        with self.engine.begin() as c:
            res = c.execute(update(t.incidents).where(_i.id == incident_id, _i.alerted_at.is_(None),
                                                      _i.resolved_at.is_(None)).values(alerted_at=now))
            if res.rowcount != 1:
                return False
            self._insert_ignoring_duplicates(c, t.outbox, outbox_insert_rows(
                ALERT, alert_ref(incident_id, OPENED), targets, utcnow()))
        return True

    def resolve_incident(self, incident_id: int, resolution: str, targets: list[str],
                         now: datetime | None = None) -> bool:
        """Close the incident; an alerted one queues its recovery message to `targets`. False when it
        was closed already."""
        now = now or utcnow()
        with self.engine.begin() as c:
            res = c.execute(update(t.incidents).where(_i.id == incident_id, _i.resolved_at.is_(None))
                            .values(resolved_at=now, open_key=None, resolution=resolution[:2000]))
            if res.rowcount != 1:
                return False
            alerted = c.execute(select(_i.alerted_at).where(_i.id == incident_id)).scalar_one()
            if alerted is not None:
                self._insert_ignoring_duplicates(c, t.outbox, outbox_insert_rows(
                    ALERT, alert_ref(incident_id, RESOLVED), targets, utcnow()))
        return True

    def failing_targets(self, targets: list[str]) -> dict[str, str]:
        """Of `targets`, those whose latest finished delivery failed permanently, with its error.

        Rows finish in id order closely enough: a target that delivered anything since its failure
        (a new brief, or the failed rows retried after a fix) delivers again."""
        if not targets:
            return {}

        def latest(target: str, status: str):
            return select(func.max(_o.id)).where(_o.target == target, _o.status == status).scalar_subquery()

        out: dict[str, str] = {}
        with self.engine.connect() as c:
            for target in sorted(set(targets)):
                sent, failed = c.execute(select(latest(target, "sent"), latest(target, "failed"))).one()
                if failed is not None and (sent is None or failed > sent):
                    error = c.execute(select(_o.last_error).where(_o.id == failed)).scalar()
                    out[target] = error or "failed"
        return out

    def llm_answered_since(self, since: datetime, until: datetime | None = None) -> bool:
        """Whether a call to the LLM got an answer after `since` (and by `until`)."""
        q = select(_u.id).where(_u.outcome.in_(_ANSWERED), _u.created > since)
        if until is not None:
            q = q.where(_u.created <= until)
        with self.engine.connect() as c:
            return c.execute(q.limit(1)).first() is not None

    def note_llm_failure(self, detail: str, now: datetime | None = None) -> None:
        """A call to the LLM failed (an outage, not the budget): the LLM incident runs from the first
        failure that no answered call followed."""
        now = now or utcnow()
        with self.engine.connect() as c:
            row = c.execute(select(t.incidents).where(_i.open_key == LLM_FAILING_KEY)).first()
        prior = _incident(row) if row else None
        if prior is not None and prior.alerted_at is None and self.llm_answered_since(prior.last_seen_at, now):
            # It answered since the last failure: this failure starts a new run.
            with self.engine.begin() as c:
                c.execute(update(t.incidents).where(_i.id == prior.id, _i.alerted_at.is_(None))
                          .values(started_at=now))
        self.observe_incident(LLM_FAILING_KEY, "llm-failing", "LLM", detail, now)
