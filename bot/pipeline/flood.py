"""The flood guard's per-poll part: a feed makes at most `max_new_per_poll` new briefs in one poll.

Entries past the cap that would start a new story are held: stored without a brief (status "held",
so the next poll knows them and never holds or summarises them again) and summarised in one notice,
queued through the outbox to the targets their topics route to, in the same write as the feed's new
state. Entries joining an existing story are not capped: they post nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot import metrics
from bot.config import FeedConfig, Settings
from bot.store import HELD, ItemRecord, NewNotice, PollWrites, notice_id

log = logging.getLogger("briefbot.pipeline")


@dataclass
class FloodGuard:
    """One poll of one feed: how many new briefs it may still make, and what it held back."""

    cap: int
    held: list[ItemRecord] = field(default_factory=list)

    @classmethod
    def for_feed(cls, settings: Settings, feed: FeedConfig) -> FloodGuard:
        return cls(settings.new_per_poll(feed))

    def full(self, briefs_decided: int) -> bool:
        return briefs_decided >= self.cap

    def hold(self, record: ItemRecord) -> None:
        record.status = HELD
        self.held.append(record)

    def queue_notice(self, settings: Settings, writes: PollWrites) -> int:
        """Add the held entries and their one notice to `writes`; returns how many were held."""
        if not self.held:
            return 0
        feed = self.held[0].feed
        nid = notice_id(feed, [rec.item_key for rec in self.held])
        topics: list[str] = []
        for rec in self.held:
            rec.brief_id = nid
            topics += [topic for topic in rec.topics if topic not in topics]
        targets = [str(target) for target in settings.targets_for(topics)]
        writes.quiet.extend(self.held)
        writes.notices.append(NewNotice(nid, targets))
        metrics.ITEMS.labels(HELD).inc(len(self.held))
        log.info("feed %s: %d more new on-topic items held back (at most %d briefs per poll), summarised in "
                 "notice %s to %d target(s)", feed, len(self.held), self.cap, nid, len(targets),
                 extra={"feed": feed})
        return len(self.held)
