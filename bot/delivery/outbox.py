"""The outbox dispatcher: delivers pending (brief|digest|notice|alert, target) rows exactly once each.

Rows are claimed with a lease, the attempt is counted *before* sending, and the row is marked
sent right after the platform accepts it. A crash in between is the one residual window:
the next attempt (attempt > 1) lets adapters check whether the message already landed.
Permanent errors mark the row failed with a clear reason; transient ones retry with backoff.

Follow-ups: a posted story that gains a source gets one follow-up row per new source and target
(when the target's route asks for them), found in the store before each round of deliveries, so
a crash or a second worker neither loses nor doubles one; it is delivered like any other row.

The flood guard's second half lives here: at most `max_posts_per_hour` briefs go to one target in
any hour. Briefs past it stay pending, marked as waiting for the cap, until the hour allows.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Callable

from bot import metrics
from bot.alerts import alert_for
from bot.delivery.adapter import Deliverer, DeliveryError, FollowUp
from bot.models import Digest, Target, utcnow
from bot.store import ALERT, CAP_WAIT, NOTICE, OutboxRow, Store
from bot.store.outbox import FOLLOW_UP, parse_follow_up_ref
from bot.store.incidents import parse_alert_ref

log = logging.getLogger("briefbot.delivery")

OUTBOX_LEASE = timedelta(minutes=2)
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
CAP_WINDOW = timedelta(hours=1)
# A story takes new sources for two days (the story window): a starting dispatcher looks that far
# back for posted stories that gained one, later rounds back to the previous look, with overlap for
# other workers' clocks and commits.
FOLLOW_UP_LOOKBACK = timedelta(hours=48)
FOLLOW_UP_OVERLAP = timedelta(minutes=10)
# The look costs tens of milliseconds with thousands of stories sent in the overlap: a dispatcher
# delivering a large backlog round after round looks at most this often.
FOLLOW_UP_EVERY = timedelta(seconds=5)


class MissingCredentials:
    """Stands in for a deliverer whose credentials are not configured: deliveries fail permanently
    with the fix in the message, instead of silently piling up."""

    def __init__(self, what: str):
        self.what = what

    async def deliver_brief(self, target: Target, *_a, **_k):
        raise DeliveryError(f"{target.redacted}: {self.what} is not set; set it and run "
                            f"`briefbot outbox --retry-failed`", permanent=True)

    deliver_digest = deliver_notice = deliver_alert = deliver_brief

    async def aclose(self) -> None:
        pass


def delivery_key(row: OutboxRow) -> str:
    """Stable across retries of this row, and unique even if the database is ever recreated."""
    return f"briefbot:{row.kind}:{row.ref_id}:{row.id}"


def backoff_for(attempts: int, retry_after: float | None) -> timedelta:
    delay = min(BASE_BACKOFF * (2 ** max(0, attempts - 1)), MAX_BACKOFF)
    if retry_after:
        delay = max(timedelta(seconds=retry_after), timedelta(seconds=1))
    return delay * (1 + random.uniform(0, 0.1))


class Dispatcher:
    """Delivers due outbox rows through the deliverer of each row's target kind."""

    def __init__(self, store: Store, deliverers: dict[str, Deliverer], parse_target: Callable[[str], Target],
                 worker_id: str, lease: timedelta | None = None,
                 posts_per_hour: Callable[[Target], int] | None = None,
                 follow_ups_for: Callable[[Target, list[str]], bool] | None = None):
        """`posts_per_hour`: the brief cap of a target (None: no cap). `follow_ups_for`: whether a
        route sending these topics to the target asks for follow-ups, read from the settings in force
        (None: from the settings each deliverer was built with)."""
        self.store = store
        self.posts_per_hour = posts_per_hour
        self.follow_ups_for = follow_ups_for
        self.deliverers = deliverers  # the app's own dict: a reload adds new kinds to it in place
        self.parse_target = parse_target
        self.worker_id = worker_id
        self.lease = lease or OUTBOX_LEASE
        self._lock = asyncio.Lock()
        self._follow_ups_read_at: datetime | None = None

    async def dispatch_once(self, limit: int = 200) -> int:
        """Deliver due rows; returns how many were sent. Concurrent calls in one process queue up."""
        async with self._lock:
            self._queue_follow_ups()
            by_target: dict[str, list[OutboxRow]] = defaultdict(list)
            # A claim whose rows all wait for an hourly cap (they are due later now) is followed by the next.
            while not any(by_target.values()):
                rows = self.store.claim_outbox(self.worker_id, self.lease, limit=limit)
                if not rows:
                    metrics.OUTBOX_BACKLOG.set(self.store.outbox_backlog())
                    return 0
                # Order is kept per target (briefs arrive in the order they were made); targets run in
                # parallel, so one slow or failing chat API never holds up the others.
                by_target = defaultdict(list)
                for row in rows:
                    by_target[row.target].append(row)
                self._hold_over_cap(by_target)
            results = await asyncio.gather(*(self._deliver_rows(r) for r in by_target.values() if r))
            metrics.OUTBOX_BACKLOG.set(self.store.outbox_backlog())
            return sum(results)

    def _queue_follow_ups(self) -> None:
        """Queue a follow-up for each source a posted story gained after its message was made, for
        each target whose route asks for follow-ups."""
        now = utcnow()
        if self._follow_ups_read_at is not None and now - self._follow_ups_read_at < FOLLOW_UP_EVERY:
            return
        since = now - FOLLOW_UP_LOOKBACK if self._follow_ups_read_at is None \
            else self._follow_ups_read_at - FOLLOW_UP_OVERLAP
        try:
            wanted = [(row.ref_id, index, row.target)
                      for row, doc in self.store.posted_stories_changed(since)
                      if self._wants_follow_ups(row.target, doc.get("topics") or [])
                      for index in range(row.sources_shown or 0, len(doc.get("sources") or []))]
            queued = self.store.enqueue_follow_ups(wanted, now)
        except Exception:  # the database may be busy: deliver what is queued, look again next round
            log.exception("could not look for follow-ups to posted stories; looking again next round")
            return
        self._follow_ups_read_at = now
        if queued:
            log.info("queued %d follow-up(s) for stories that gained a source", queued)

    def _wants_follow_ups(self, target_text: str, topics: list[str]) -> bool:
        """Whether `target` gets follow-ups for a story of `topics`: its adapter can post them and,
        by the settings its deliverer was built with, a route sending those topics there asks for them."""
        try:
            target = self.parse_target(target_text)
        except ValueError:
            return False
        deliverer = self.deliverers.get(target.kind)
        if deliverer is None or getattr(deliverer, "deliver_follow_up", None) is None:
            return False
        if self.follow_ups_for is not None:
            return self.follow_ups_for(target, topics)
        settings = getattr(deliverer, "settings", None)
        return settings is None or settings.follow_ups_for(target, topics)

    def _hold_over_cap(self, by_target: dict[str, list[OutboxRow]]) -> None:
        """Leave out (in place) each target's briefs past its hourly cap: they wait, still pending,
        until the oldest post of the hour is an hour old. Digests and notices are never held."""
        if self.posts_per_hour is None:
            return
        now = utcnow()
        sent = self.store.sent_since(list(by_target), now - CAP_WINDOW)
        for target_text, rows in by_target.items():
            try:
                target = self.parse_target(target_text)
            except ValueError:
                continue  # deliver() fails the row with the reason
            cap = self.posts_per_hour(target)
            times = list(sent.get(target_text, []))
            keep: list[OutboxRow] = []
            over: list[OutboxRow] = []
            for row in rows:
                if row.kind != "brief":
                    keep.append(row)
                elif len(times) < cap:
                    times.append(now)  # goes out now: counts against the hour
                    keep.append(row)
                else:
                    over.append(row)
            if over:
                self._wait_for_cap(over, target, cap, times[len(times) - cap] + CAP_WINDOW)
            rows[:] = keep

    def _wait_for_cap(self, rows: list[OutboxRow], target: Target, cap: int, until: datetime) -> None:
        for row in rows:
            self.store.outbox_retry(row.id, f"{CAP_WAIT} of {cap} posts reached; waits until "
                                            f"{until:%Y-%m-%d %H:%M:%S} UTC", until)
        metrics.DELIVERIES.labels(target.kind, "held").inc(len(rows))
        log.info("%d brief(s) to %s wait for the hourly cap (%d posts per hour) until %s UTC", len(rows),
                 target.redacted, cap, f"{until:%H:%M:%S}", extra={"target": target.redacted})

    async def _deliver_rows(self, rows: list[OutboxRow]) -> int:
        sent = 0
        for i, row in enumerate(rows):
            outcome = await self.deliver(row)
            if outcome == "sent":
                sent += 1
            elif outcome == "retry":
                # The target is unhealthy: leave its remaining rows for later instead of hammering it.
                for rest in rows[i + 1:]:
                    self.store.outbox_retry(rest.id, "deferred: earlier delivery to this target failed",
                                            utcnow() + timedelta(seconds=5))
                break
        return sent

    async def deliver(self, row: OutboxRow) -> str:
        """Deliver one row: "sent", "retry" or "failed"."""
        try:
            target = self.parse_target(row.target)
        except ValueError as exc:
            self.store.outbox_failed(row.id, f"bad target: {exc}")
            return "failed"
        deliverer = self.deliverers.get(target.kind)
        if deliverer is None:
            self.store.outbox_failed(row.id, f"no adapter for target kind {target.kind}")
            return "failed"
        try:
            external = await self._send(row, target, deliverer)
        except DeliveryError as exc:
            return self._failed(row, target, exc)
        except Exception as exc:  # an adapter bug must not lose the row: retry it later
            delay = backoff_for(row.attempts + 1, None)
            self.store.outbox_retry(row.id, f"internal error: {type(exc).__name__}: {exc}", utcnow() + delay)
            metrics.DELIVERIES.labels(target.kind, "error").inc()
            log.exception("delivery of %s %s to %s raised", row.kind, row.ref_id, target.redacted,
                          extra={"target": target.redacted, "brief_id": row.ref_id})
            return "retry"
        self.store.outbox_sent(row.id, external, link=await self._message_link(deliverer, target, external))
        metrics.DELIVERIES.labels(target.kind, "sent").inc()
        log.debug("delivered %s %s to %s", row.kind, row.ref_id, target.redacted,
                  extra={"target": target.redacted, "brief_id": row.ref_id})
        return "sent"

    @staticmethod
    async def _message_link(deliverer: Deliverer, target: Target, external_id: str | None) -> str | None:
        """Where a person opens the posted message, when the adapter can say; not learning it never
        fails a delivery that landed."""
        find = getattr(deliverer, "message_link", None)
        if find is None or not external_id:
            return None
        try:
            return await find(target, external_id)
        except Exception as exc:  # the message is posted: only its link is missing
            log.warning("posted to %s, but its message link is unknown: %s", target.redacted, exc,
                        extra={"target": target.redacted})
            return None

    async def _send(self, row: OutboxRow, target: Target, deliverer: Deliverer) -> str | None:
        """Post the row's brief or digest; a row whose content is gone fails permanently.

        The attempt is counted before sending, so a crash mid-send is seen as attempt > 1."""
        key = delivery_key(row)
        attempt = row.attempts + 1
        if row.kind == "brief":
            brief = self.store.get_brief(row.ref_id)
            if brief is None:
                raise DeliveryError(f"brief {row.ref_id} no longer exists", permanent=True)
            self.store.outbox_attempt(row.id, shown=(len(brief.sources), len(brief.figures)))
            return await deliverer.deliver_brief(target, brief, delivery_key=key, attempt=attempt)
        if row.kind == FOLLOW_UP:
            return await self._send_follow_up(row, target, deliverer, key, attempt)
        if row.kind == NOTICE:
            return await self._send_notice(row, target, deliverer, key, attempt)
        if row.kind == ALERT:
            return await self._send_alert(row, target, deliverer, key, attempt)
        run = self.store.get_digest_run(row.ref_id)
        if run is None or not run.get("doc"):
            raise DeliveryError(f"digest {row.ref_id} has no content", permanent=True)
        self.store.outbox_attempt(row.id)
        return await deliverer.deliver_digest(target, Digest.model_validate(run["doc"]), delivery_key=key,
                                              attempt=attempt)

    async def _send_notice(self, row: OutboxRow, target: Target, deliverer: Deliverer, key: str,
                           attempt: int) -> str | None:
        notice = self.store.get_notice(row.ref_id)
        if notice is None:
            raise DeliveryError(f"notice {row.ref_id} names no held items", permanent=True)
        send = getattr(deliverer, "deliver_notice", None)
        if send is None:
            raise DeliveryError(f"{target.redacted}: this adapter cannot post flood notices", permanent=True)
        self.store.outbox_attempt(row.id)
        return await send(target, notice, delivery_key=key, attempt=attempt)

    async def _send_alert(self, row: OutboxRow, target: Target, deliverer: Deliverer, key: str,
                          attempt: int) -> str | None:
        ref = parse_alert_ref(row.ref_id)
        incident = self.store.get_incident(ref[0]) if ref else None
        if ref is None or incident is None:
            raise DeliveryError(f"alert {row.ref_id} names no incident", permanent=True)
        send = getattr(deliverer, "deliver_alert", None)
        if send is None:
            raise DeliveryError(f"{target.redacted}: this adapter cannot post alerts", permanent=True)
        self.store.outbox_attempt(row.id)
        return await send(target, alert_for(incident, ref[1], row.ref_id), delivery_key=key, attempt=attempt)

    async def _send_follow_up(self, row: OutboxRow, target: Target, deliverer: Deliverer, key: str,
                              attempt: int) -> str | None:
        """One later source of a posted story, with the figures it adds that the target has not seen
        and the text it gave the story in a language that had none."""
        ref = parse_follow_up_ref(row.ref_id)
        brief = self.store.get_brief(ref[0]) if ref else None
        if ref is None or brief is None or ref[1] >= len(brief.sources):
            raise DeliveryError(f"follow-up {row.ref_id} names no source of a stored story", permanent=True)
        send = getattr(deliverer, "deliver_follow_up", None)
        parent = self.store.delivery("brief", brief.id, row.target)
        if send is None or parent is None or parent.status != "sent":
            raise DeliveryError(f"{target.redacted}: follow-up {row.ref_id} has no posted story to follow",
                                permanent=True)
        shown = self.store.figures_shown_to(brief.id, row.target, ref[1])
        follow_up = FollowUp(brief=brief, source=brief.sources[ref[1]], figures=brief.figures[shown:],
                             parent_ref=parent.external_id, parent_key=delivery_key(parent),
                             filled=tuple(lang for lang, index in brief.filled_from.items() if index == ref[1]))
        self.store.outbox_attempt(row.id, shown=(ref[1] + 1, len(brief.figures)))
        return await send(target, follow_up, delivery_key=key, attempt=attempt)

    def _failed(self, row: OutboxRow, target: Target, exc: DeliveryError) -> str:
        if exc.permanent:
            self.store.outbox_failed(row.id, str(exc))
            metrics.DELIVERIES.labels(target.kind, "failed").inc()
            log.error("delivery of %s %s to %s failed permanently: %s", row.kind, row.ref_id, target.redacted,
                      exc, extra={"target": target.redacted, "brief_id": row.ref_id})
            return "failed"
        attempt = row.attempts + 1
        delay = backoff_for(attempt, exc.retry_after)
        self.store.outbox_retry(row.id, str(exc), utcnow() + delay)
        metrics.DELIVERIES.labels(target.kind, "retry").inc()
        log.warning("delivery of %s %s to %s failed (attempt %d), retrying in %ss: %s", row.kind, row.ref_id,
                    target.redacted, attempt, int(delay.total_seconds()), exc,
                    extra={"target": target.redacted, "brief_id": row.ref_id})
        return "retry"
