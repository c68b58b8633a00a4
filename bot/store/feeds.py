"""Feed state: conditional-GET validators, health, backoff, and the lease that lets one worker
poll a feed at a time."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine, as_utc


@dataclass
class FeedState:
    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_fetch_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: str | None = None
    last_problem: str | None = None
    failures: int = 0
    last_error: str | None = None
    next_poll_at: datetime | None = None
    disabled_reason: str | None = None
    items_total: int = 0
    first_polled: bool = False


@dataclass
class FeedUpdate:
    """`Store.update_feed(name, release_owner=…, **values)` as part of a larger write.

    Its `body_hash` says the feed's document has been decided in full; it is left out when an
    entry could not be written because the story it joins is gone, so the next poll reads the
    document again (rather than skipping it as unchanged) and decides that entry anew."""
    name: str
    values: dict[str, Any]
    release_owner: str | None = None


def row_to_feed_state(row) -> FeedState:
    m = dict(row._mapping)
    m.pop("lease_owner", None)
    m.pop("lease_until", None)
    for k in ("last_fetch_at", "last_success_at", "next_poll_at"):
        m[k] = as_utc(m[k])
    m["failures"] = m["failures"] or 0
    m["items_total"] = m["items_total"] or 0
    m["first_polled"] = bool(m["first_polled"])
    return FeedState(**m)


# The poll path's statements are built once with bound parameters: building a Core statement
# (coercing every value into a bind parameter) costs more CPU than SQLite takes to run it, and a
# warm poll is little more than these statements. Values travel as execution parameters.
_f = t.feeds.c
_BY_NAME = _f.name == bindparam("feed_name")
_FREE = or_(_f.lease_until.is_(None), _f.lease_until < bindparam("now"), _f.lease_owner == bindparam("owner"))
_DUE = or_(_f.next_poll_at.is_(None), _f.next_poll_at <= bindparam("now"))


def _claim(which, force: bool):
    """Lease the `which` feeds that are enabled, free and (unless forced) due.

    One conditional UPDATE is atomic on SQLite and PostgreSQL alike (a concurrent claimer
    re-evaluates the WHERE after the first commits and matches no row)."""
    cond = [which, _f.disabled_reason.is_(None), _FREE] + ([] if force else [_DUE])
    return update(t.feeds).where(and_(*cond)).values(lease_owner=bindparam("owner"), lease_until=bindparam("until"))


_CLAIM_ONE = {force: _claim(_BY_NAME, force) for force in (False, True)}
_CLAIM_MANY_RETURNING = {force: _claim(_f.name.in_(bindparam("feed_names", expanding=True)), force)
                         .returning(*t.feeds.c) for force in (False, True)}
_FEED_STATE = select(t.feeds).where(_BY_NAME)
_FEED_STATE_FIELDS = frozenset(t.feeds.c.keys()) - {"name"}
# SET columns come from the execution parameters' keys (one cached compilation per key set).
_UPDATE_FEED = update(t.feeds).where(_BY_NAME)
# The same, also ending this owner's lease: SET expressions see the row as it was, so both CASEs
# test the old owner. Another owner's lease (taken after ours expired) stays.
_OURS = _f.lease_owner == bindparam("release_owner")
_UPDATE_FEED_RELEASING = update(t.feeds).where(_BY_NAME).values(
    lease_owner=case((_OURS, None), else_=_f.lease_owner), lease_until=case((_OURS, None), else_=_f.lease_until))
_RELEASE_FEED = update(t.feeds).where(_BY_NAME, _f.lease_owner == bindparam("owner")).values(
    lease_owner=None, lease_until=None)
COUNT_ITEMS = update(t.feeds).where(_BY_NAME).values(
    items_total=_f.items_total + bindparam("added", type_=t.feeds.c.items_total.type))


def feed_update_statement(feed_update: FeedUpdate) -> tuple[Any, dict]:
    """The statement and parameters that apply `feed_update`."""
    unknown = set(feed_update.values) - _FEED_STATE_FIELDS
    if unknown:
        raise ValueError(f"unknown feed state fields: {sorted(unknown)}")
    if feed_update.release_owner is not None and {"lease_owner", "lease_until"} & set(feed_update.values):
        raise ValueError("update_feed: set the lease fields or release_owner, not both")
    params = {"feed_name": feed_update.name, **feed_update.values}
    if feed_update.release_owner is None:
        return _UPDATE_FEED, params
    params["release_owner"] = feed_update.release_owner
    return _UPDATE_FEED_RELEASING, params


class FeedsStore(StoreEngine):
    def ensure_feed(self, name: str, url: str) -> None:
        with self.engine.begin() as c:
            row = c.execute(select(_f.url).where(_f.name == name)).first()
            if row is None:
                try:
                    with c.begin_nested():
                        c.execute(insert(t.feeds).values(name=name, url=url, failures=0, items_total=0,
                                                         first_polled=False))
                except IntegrityError:
                    pass  # another worker created it first
            elif row.url != url:
                # A changed URL is a new feed: forget validators, health and backoff.
                c.execute(update(t.feeds).where(_f.name == name).values(
                    url=url, etag=None, last_modified=None, body_hash=None, failures=0, last_error=None,
                    next_poll_at=None, disabled_reason=None))

    def feed_state(self, name: str) -> FeedState | None:
        with self.engine.connect() as c:
            row = c.execute(_FEED_STATE, {"feed_name": name}).first()
        return row_to_feed_state(row) if row else None

    def feed_states(self) -> list[FeedState]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.feeds).order_by(_f.name)).all()
        return [row_to_feed_state(r) for r in rows]

    def troubled_feeds(self, names: Collection[str]) -> list[FeedState]:
        """The feeds of `names` that are switched off (HTTP 410) or whose latest fetch failed, by name."""
        # Asked every minute by the alert check: the database returns the few troubled rows, not every feed.
        q = select(t.feeds).where(or_(_f.disabled_reason.is_not(None), _f.failures > 0)).order_by(_f.name)
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        return [state for state in map(row_to_feed_state, rows) if state.name in names]

    def update_feed(self, name: str, *, release_owner: str | None = None, **values: Any) -> None:
        """Set feed state fields. With `release_owner`, the same UPDATE also ends that owner's lease
        (as `release_feed` would), so recording a poll's result and releasing the feed is one statement."""
        if not values and release_owner is None:
            return
        statement = feed_update_statement(FeedUpdate(name, values, release_owner))
        with self.engine.begin() as c:
            c.execute(*statement)

    def claim_feed_states(self, names: list[str], owner: str, lease: timedelta, now: datetime | None = None,
                          force: bool = False) -> dict[str, FeedState]:
        """Claim the next poll of these feeds across workers: each that is due (unless `force`),
        enabled and not leased elsewhere. Returns the state of each feed claimed."""
        now = now or utcnow()
        # RETURNING (SQLite >= 3.35, PostgreSQL) hands back the claimed feeds' state in the claiming
        # statement, for any number of feeds at once.
        if not self.engine.dialect.update_returning:
            claimed = {name: self._claim_one_then_read(name, owner, lease, now, force) for name in names}
            return {name: state for name, state in claimed.items() if state is not None}
        params = {"feed_names": sorted(set(names)), "owner": owner, "now": now, "until": now + lease}
        with self.engine.begin() as c:
            rows = c.execute(_CLAIM_MANY_RETURNING[force], params).all()
        return {row.name: row_to_feed_state(row) for row in rows}

    def _claim_one_then_read(self, name: str, owner: str, lease: timedelta, now: datetime,
                             force: bool) -> FeedState | None:
        """One feed's claim where UPDATE … RETURNING is missing: claim, then read, in one transaction."""
        params = {"feed_name": name, "owner": owner, "now": now, "until": now + lease}
        with self.engine.begin() as c:
            claimed = c.execute(_CLAIM_ONE[force], params).rowcount == 1
            row = c.execute(_FEED_STATE, {"feed_name": name}).first() if claimed else None
        return row_to_feed_state(row) if row else None

    def release_feed(self, name: str, owner: str) -> None:
        with self.engine.begin() as c:
            c.execute(_RELEASE_FEED, {"feed_name": name, "owner": owner})
