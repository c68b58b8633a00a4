"""Prometheus metrics, one registry for the process (served on /metrics by `briefbot run`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

POLLS = Counter("briefbot_polls_total", "Feed polls by outcome", ["outcome"], registry=REGISTRY)
FETCH_ERRORS = Counter("briefbot_fetch_errors_total", "Feed fetch errors by kind", ["kind"], registry=REGISTRY)
ITEMS = Counter("briefbot_items_total", "Feed entries seen, by outcome", ["outcome"], registry=REGISTRY)
BRIEFS = Counter("briefbot_briefs_total", "Briefs created, by mode", ["mode"], registry=REGISTRY)
STORY_MERGES = Counter("briefbot_story_merges_total", "Items joined to an existing story", registry=REGISTRY)
LLM_CALLS = Counter("briefbot_llm_calls_total", "LLM calls by purpose and outcome", ["purpose", "outcome"],
                    registry=REGISTRY)
LLM_TOKENS = Counter("briefbot_llm_tokens_total", "LLM tokens by direction", ["direction"], registry=REGISTRY)
LLM_LATENCY = Histogram("briefbot_llm_latency_seconds", "LLM call latency", registry=REGISTRY,
                        buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 40, 80))
GROUNDING_REJECTIONS = Counter("briefbot_grounding_rejections_total",
                               "Model output rejected by the grounding guard, by what was rejected", ["what"],
                               registry=REGISTRY)
DELIVERIES = Counter("briefbot_deliveries_total", "Delivery attempts by target kind and outcome",
                     ["target", "outcome"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("briefbot_outbox_backlog", "Pending outbox rows", registry=REGISTRY)
DIGEST_RUNS = Counter("briefbot_digest_runs_total", "Digest runs by outcome", ["outcome"], registry=REGISTRY)
LAST_SUCCESSFUL_POLL = Gauge("briefbot_last_successful_poll_timestamp_seconds",
                             "Unix time of the last successful feed poll", registry=REGISTRY)
