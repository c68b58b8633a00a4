"""What the dashboard is given by whoever serves it (the running bot, or `briefbot dashboard`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from bot.config import Env, Settings
from bot.config.redact import redact
from bot.models import Target
from bot.store import Store
from bot.subscriptions import SubscriptionService
from bot.web.access import Access

WEB_TOKEN_ENV = "BRIEFBOT_WEB_TOKEN"


@dataclass
class DashboardDeps:
    settings: Callable[[], Settings]  # the current settings (a reload swaps them)
    store: Store
    env: Env
    # A stored target as it may be shown (a webhook's token hidden); the adapters know how.
    show_target: Callable[[str], str]
    # A target typed as in feeds.yaml, validated by its adapter (ValueError when it is not one).
    parse_target: Callable[[str], Target]
    # The service `/brief subscribe|follow` use, on the current feeds.yaml.
    subscriptions: Callable[[], SubscriptionService]
    # Values never to be shown: tokens, keys. Any text from the store is scrubbed of them.
    secrets: list[str] = field(default_factory=list)

    def access(self) -> Access:
        return Access.from_token(self.env.get(WEB_TOKEN_ENV), self.env.bind)

    def scrub(self, text: str | None) -> str | None:
        return redact(text, self.secrets, "[hidden]") if text else text
