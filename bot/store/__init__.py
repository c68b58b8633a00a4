"""The one store, read as its aggregates: feed state (feeds), seen entries (items), stories
(briefs), a poll's one-transaction write (polls) and the story keys it claims (story_keys), what the
flood guard held back (held), deliveries (outbox), digest runs (digests), named leases (leases), the
LLM cache and usage (llm), feeds and follows made from chat (subscriptions), incidents behind alerts
(incidents); the engine and schema creation (engine)."""

from __future__ import annotations

from bot.store.briefs import BriefsStore, NewBrief, StoryJoin
from bot.store.digests import DigestsStore
from bot.store.engine import as_utc, default_worker_id, make_engine
from bot.store.feeds import FeedState, FeedsStore, FeedUpdate
from bot.store.held import CAP_WAIT, HELD, NOTICE, HeldStore, notice_id
from bot.store.incidents import ALERT, Incident, IncidentsStore
from bot.store.items import ItemRecord
from bot.store.leases import LeasesStore
from bot.store.llm import LlmStore
from bot.store.outbox import OutboxRow, OutboxStore
from bot.store.polls import NewNotice, PollsStore, PollWrites, WrittenPoll
from bot.store.story_keys import StoryKeysStore
from bot.store.subscriptions import FollowRow, SubscriptionRow, SubscriptionsStore

__all__ = [
    "ALERT", "CAP_WAIT", "HELD", "Incident", "NOTICE", "NewNotice", "notice_id",
    "FeedState", "FeedUpdate", "ItemRecord", "NewBrief", "OutboxRow", "PollWrites", "Store", "StoryJoin",
    "WrittenPoll", "FollowRow", "SubscriptionRow", "as_utc", "default_worker_id", "make_engine",
]


class Store(FeedsStore, StoryKeysStore, PollsStore, BriefsStore, OutboxStore, DigestsStore, LeasesStore, LlmStore,
            HeldStore,
            IncidentsStore,
            SubscriptionsStore):
    """Every aggregate's methods on one engine: `Store(url)`, then `create()` once at start-up."""
