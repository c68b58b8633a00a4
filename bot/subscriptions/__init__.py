"""Feeds and follows managed from chat and the CLI, stored in the database and merged with feeds.yaml."""

from bot.subscriptions.merge import ChatConfig, merge
from bot.subscriptions.service import (
    FROM_CHAT,
    FROM_FILE,
    Change,
    FeedStatus,
    Follow,
    Listing,
    SubscriptionService,
)
from bot.subscriptions.trial import TrialRead

__all__ = ["FROM_CHAT", "FROM_FILE", "Change", "ChatConfig", "FeedStatus", "Follow", "Listing",
           "SubscriptionService", "TrialRead", "merge"]
