"""The running bot's parts, built once from config + environment and handed to every stage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot.config import Env, Settings
from bot.queries import QueryService
from bot.store import Store, default_worker_id

log = logging.getLogger("briefbot")


@dataclass
class App:
    settings: Settings
    env: Env
    store: Store
    worker_id: str = field(default_factory=default_worker_id)
    # Set up lazily by the pipeline / adapters (see bot.pipeline.build_app):
    fetcher: Any = None  # bot.feeds.fetch.Fetcher
    parser: Any = None  # bot.feeds.parse_pool.FeedParser
    llm: Any = None  # bot.summarise.llm.LLMSummariser | None (None = extractive only)
    deliverers: dict[str, Any] = field(default_factory=dict)  # target kind -> Deliverer
    console_stream: Any = None  # where the console target writes (default sys.stdout)

    @property
    def queries(self) -> QueryService:
        return QueryService(self.settings, self.store)
