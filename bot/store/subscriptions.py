"""Feeds and follows made from chat or the CLI: the rows that are merged with feeds.yaml.

A subscription's fetch state lives in `feeds` under its name, like any feed's, so adding one also
creates that row (the poller's claims need it) in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine, as_utc

_s = t.subscriptions.c
_fo = t.follows.c


@dataclass(frozen=True)
class SubscriptionRow:
    name: str
    url: str
    topics: tuple[str, ...] | None  # None: every topic
    target: str
    created_by: str
    created: datetime


@dataclass(frozen=True)
class FollowRow:
    topic: str
    target: str
    created_by: str
    created: datetime


class SubscriptionsStore(StoreEngine):
    def subscriptions(self) -> list[SubscriptionRow]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.subscriptions).order_by(_s.name)).all()
        return [SubscriptionRow(r.name, r.url, tuple(r.topics) if r.topics is not None else None, r.target,
                                r.created_by, as_utc(r.created)) for r in rows]

    def add_subscription(self, name: str, url: str, topics: list[str] | None, target: str, created_by: str) -> bool:
        """Store a subscription and its feed row; False when the name is taken."""
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.subscriptions).values(name=name, url=url, topics=topics, target=target,
                                                         created_by=created_by, created=utcnow()))
                row = c.execute(select(t.feeds.c.url).where(t.feeds.c.name == name)).first()
                if row is None:
                    c.execute(insert(t.feeds).values(name=name, url=url, failures=0, items_total=0,
                                                     first_polled=False))
                elif row.url != url:
                    # A feed of that name was polled before at another URL: start its state afresh.
                    c.execute(update(t.feeds).where(t.feeds.c.name == name).values(
                        url=url, etag=None, last_modified=None, body_hash=None, failures=0, last_error=None,
                        next_poll_at=None, disabled_reason=None))
        except IntegrityError:
            return False
        return True

    def remove_subscription(self, name: str) -> bool:
        """Forget a subscription (its feed's history stays, as for a feed removed from feeds.yaml)."""
        with self.engine.begin() as c:
            return c.execute(delete(t.subscriptions).where(_s.name == name)).rowcount > 0

    def follows(self, target: str | None = None) -> list[FollowRow]:
        q = select(t.follows).order_by(_fo.target, _fo.topic)
        if target is not None:
            q = q.where(_fo.target == target)
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        return [FollowRow(r.topic, r.target, r.created_by, as_utc(r.created)) for r in rows]

    def add_follow(self, topic: str, target: str, created_by: str) -> bool:
        """False when the target already follows the topic."""
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.follows).values(topic=topic, target=target, created_by=created_by,
                                                   created=utcnow()))
        except IntegrityError:
            return False
        return True

    def remove_follow(self, topic: str, target: str) -> bool:
        with self.engine.begin() as c:
            return c.execute(delete(t.follows).where(_fo.topic == topic, _fo.target == target)).rowcount > 0
