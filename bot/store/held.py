"""What the flood guard held back: items stored without briefs (status "held"), each carrying the id
of the one notice that summarised it, and brief deliveries waiting for a target's hourly cap.

A notice has no table of its own: it is the held items that name it (in `brief_id`), read back when
its outbox row is delivered, so the count and headlines it shows are exactly what was stored."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime

from sqlalchemy import and_, func, select

from bot.models import Notice, Source
from bot.store import schema as t
from bot.store.engine import StoreEngine, as_utc

HELD = "held"
NOTICE = "notice"
# An outbox row deferred by a target's hourly cap says so in its last_error, starting with this.
CAP_WAIT = "held: hourly cap"
# Headlines a notice lists; the rest are counted.
NOTICE_HEADLINES = 5

_i = t.items.c
_o = t.outbox.c


def notice_id(feed: str, item_keys: list[str]) -> str:
    """Stable for the same held items: a poll written again after a crash queues the same notice."""
    digest = hashlib.sha256("\x1f".join([feed, *sorted(item_keys)]).encode("utf-8")).hexdigest()
    return "n_" + digest[:16]


class HeldStore(StoreEngine):
    def held_counts(self) -> dict[str, int]:
        """Per feed: items held back by the flood guard, plus its briefs whose delivery waits for a
        target's hourly cap (one per waiting brief, however many targets wait)."""
        counts: Counter = Counter()
        with self.engine.connect() as c:
            counts.update(dict(c.execute(select(_i.feed, func.count()).where(_i.status == HELD)
                                         .group_by(_i.feed)).all()))
            waiting = (select(_i.feed, func.count(func.distinct(_o.ref_id)))
                       .select_from(t.outbox.join(t.items, and_(_i.brief_id == _o.ref_id, _i.status == "briefed")))
                       .where(_o.kind == "brief", _o.status == "pending", _o.last_error.like(CAP_WAIT + "%"))
                       .group_by(_i.feed))
            counts.update(dict(c.execute(waiting).all()))
        return dict(counts)

    def held_between(self, start: datetime, end: datetime) -> list[tuple[str, list[str]]]:
        """(feed, topics) of each item held back in [start, end), oldest first."""
        q = (select(_i.feed, _i.topics).where(_i.status == HELD, _i.seen_at >= start, _i.seen_at < end)
             .order_by(_i.seen_at, _i.id))
        with self.engine.connect() as c:
            return [(row.feed, list(row.topics or [])) for row in c.execute(q).all()]

    def get_notice(self, ref_id: str) -> Notice | None:
        """The notice `ref_id` as its held items tell it, or None when none names it."""
        q = (select(_i.feed, _i.title, _i.link, _i.published, _i.topics, _i.seen_at)
             .where(_i.brief_id == ref_id, _i.status == HELD))
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        if not rows:
            return None
        topics: list[str] = []
        for row in rows:
            topics += [topic for topic in row.topics or [] if topic not in topics]
        # Newest first; undated items after the dated ones.
        newest = sorted(rows, key=lambda r: (r.published is None, -(as_utc(r.published).timestamp()
                                                                     if r.published else 0)))
        headlines = [Source(url=r.link or "", feed=r.feed, title=r.title or "(untitled)",
                            published=as_utc(r.published)) for r in newest[:NOTICE_HEADLINES]]
        return Notice(id=ref_id, feed=rows[0].feed, count=len(rows), topics=topics, headlines=headlines,
                      created=min(as_utc(r.seen_at) for r in rows))
