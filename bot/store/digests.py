"""Digest runs: a digest is posted once per scheduled fire time, and the unique row is the claim."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine

_d = t.digest_runs.c


class DigestsStore(StoreEngine):
    def claim_digest_run(self, name: str, day: str, scheduled_for: datetime, owner: str,
                         doc: dict | None = None, run_id: str | None = None) -> bool:
        """Only the first worker (or first run after a restart) to insert the run's row wins.

        `run_id` names the run (a scheduled digest: its fire time); without it, "<name>:<day>"."""
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.digest_runs).values(id=run_id or f"{name}:{day}", name=name, day=day,
                                                       scheduled_for=scheduled_for, created=utcnow(),
                                                       owner=owner, doc=doc))
            return True
        except IntegrityError:
            return False

    def get_digest_run(self, run_id: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.digest_runs).where(_d.id == run_id)).first()
        return dict(row._mapping) if row else None

    def digest_runs(self, name: str | None = None) -> list[dict]:
        q = select(t.digest_runs).order_by(_d.scheduled_for)
        if name:
            q = q.where(_d.name == name)
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q).all()]
