"""Named leases: one worker at a time for a job that is not a feed (a digest being built)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine

_l = t.leases.c


class LeasesStore(StoreEngine):
    def try_lease(self, name: str, owner: str, ttl: timedelta, now: datetime | None = None) -> bool:
        """Take the lease, or renew it if `owner` holds it; False while another owner's is running."""
        now = now or utcnow()
        with self.engine.begin() as c:
            res = c.execute(update(t.leases).where(_l.name == name, or_(_l.until < now, _l.owner == owner))
                            .values(owner=owner, until=now + ttl))
            if res.rowcount == 1:
                return True
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.leases).values(name=name, owner=owner, until=now + ttl))
            return True
        except IntegrityError:
            return False

    def release_lease(self, name: str, owner: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(t.leases).where(_l.name == name, _l.owner == owner))
