"""Database tables (SQLAlchemy Core). SQLite by default, PostgreSQL for scale-out."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


def _ts(name: str, **kw) -> Column:
    return Column(name, DateTime(timezone=True), **kw)


# Per-feed fetch state: conditional-GET validators, health, backoff and the poll lease.
feeds = Table(
    "feeds",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("url", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    _ts("last_fetch_at"),
    _ts("last_success_at"),
    Column("last_status", String(40)),  # "ok", "not-modified", "unchanged", "error:<kind>", "gone"
    Column("last_problem", Text),  # malformed-but-usable feed notes
    Column("failures", Integer, nullable=False, default=0),
    Column("last_error", Text),
    _ts("next_poll_at"),
    Column("disabled_reason", Text),
    Column("items_total", Integer, nullable=False, default=0),
    Column("first_polled", Boolean, nullable=False, default=False),
    Column("lease_owner", String(100)),
    _ts("lease_until"),
)

# Every entry ever seen, relevant or not, so nothing is briefed twice across restarts.
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feed", String(200), nullable=False),
    Column("item_key", String(80), nullable=False),  # hash of guid / canonical link / title+date
    Column("guid", Text),
    Column("link", Text),
    Column("link_key", String(64)),  # hash of canonical link, for GUID churn
    Column("content_key", String(64)),  # hash of normalised title+content, for GUID churn
    Column("title", Text),
    _ts("published"),
    _ts("seen_at", nullable=False),
    Column("status", String(20), nullable=False),  # briefed | merged | held | irrelevant | old | future
    Column("topics", JSON),
    Column("brief_id", String(40)),  # briefed/merged: its story; held: the flood notice that summarised it
    UniqueConstraint("feed", "item_key", name="uq_items_feed_key"),
    Index("ix_items_feed_link", "feed", "link_key"),
    Index("ix_items_feed_content", "feed", "content_key"),
)

briefs = Table(
    "briefs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("doc", JSON, nullable=False),  # Brief.to_json_dict()
    Column("mode", String(12), nullable=False),
    _ts("created", nullable=False),
    _ts("updated", nullable=False),
    _ts("published"),
    Column("language", String(8)),
    Column("search_text", Text, nullable=False, default=""),  # lower-cased titles+summaries, both languages
    Column("signature", JSON),  # cheap story-matching signals (see bot/analyse/stories.py)
    Index("ix_briefs_created", "created"),
)

# One row per (brief, topic) so `/brief <topic>` is an index range scan, newest first.
brief_topics = Table(
    "brief_topics",
    metadata,
    Column("brief_id", String(40), ForeignKey("briefs.id", ondelete="CASCADE"), primary_key=True),
    Column("topic", String(100), primary_key=True),
    _ts("created", nullable=False),
    Index("ix_brief_topics_topic_created", "topic", "created"),
)

brief_sources = Table(
    "brief_sources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("brief_id", String(40), ForeignKey("briefs.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("feed", String(200), nullable=False),
    Column("title", Text, nullable=False),
    _ts("published"),
    _ts("added", nullable=False),
    UniqueConstraint("brief_id", "feed", "url", name="uq_brief_sources"),
)

# Delivery outbox: one row per (kind, ref, target). Rows are claimed with a lease, so
# a crashed worker's rows go back to the pool after lease expiry.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(12), nullable=False),  # brief | digest | notice
    Column("ref_id", String(80), nullable=False),
    Column("target", Text, nullable=False),
    Column("status", String(12), nullable=False, default="pending"),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    _ts("created", nullable=False),
    _ts("next_attempt_at", nullable=False),
    _ts("sent_at"),
    Column("last_error", Text),
    Column("external_id", Text),  # the platform's message id, to avoid duplicates after a crash
    Column("link", Text),  # where a person opens the posted message, as its adapter gave it (or none)
    # Follow-ups: how many of the brief's sources and figures its sent message showed (brief and
    # follow_up rows), so a source joining later is told in the message's thread.
    Column("sources_shown", Integer),
    Column("figures_shown", Integer),
    Column("lease_owner", String(100)),
    _ts("lease_until"),
    UniqueConstraint("kind", "ref_id", "target", name="uq_outbox_delivery"),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    # A target's latest sent and latest failed delivery, each one index seek (the alert check, every
    # minute, over an outbox that only grows).
    Index("ix_outbox_target_status_id", "target", "status", "id"),
)

# A digest is posted once per scheduled fire time: the unique row is the claim.
digest_runs = Table(
    "digest_runs",
    metadata,
    Column("id", String(120), primary_key=True),  # "<name>@<fire time, UTC>"; day-keyed "<name>:<YYYY-MM-DD>" too
    Column("name", String(100), nullable=False),
    Column("day", String(10), nullable=False),
    _ts("scheduled_for", nullable=False),
    _ts("created", nullable=False),
    Column("owner", String(100)),
    Column("doc", JSON),  # rendered digest (platform-neutral)
)

llm_cache = Table(
    "llm_cache",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256(content hash, model, prompt version)
    Column("reply", JSON, nullable=False),
    _ts("created", nullable=False),
)

llm_usage = Table(
    "llm_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", String(10), nullable=False),  # UTC date
    Column("model", String(100), nullable=False),
    Column("purpose", String(20), nullable=False),  # brief | repair | digest
    Column("prompt_tokens", BigInteger, nullable=False, default=0),
    Column("completion_tokens", BigInteger, nullable=False, default=0),
    Column("latency_ms", Float),
    Column("outcome", String(20), nullable=False),  # ok | rejected | error
    _ts("created", nullable=False),
    Index("ix_llm_usage_day", "day"),
)

# Generic named leases (scheduler singletons, digest runs in flight).
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(100), nullable=False),
    _ts("until", nullable=False),
)

# ---- Subscriptions and follows made from chat or the CLI (feeds.yaml stays the operator's baseline).

# A feed added with `/brief subscribe` or `briefbot subscribe`; polled like a feeds.yaml feed (its
# state lives in `feeds` under the same name).
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("topics", JSON),  # the topics it may produce; null: every topic
    Column("target", Text, nullable=False),  # where it was subscribed from
    Column("created_by", String(200), nullable=False),
    _ts("created", nullable=False),
)

# A target following a topic: new briefs of the topic are posted there, as a feeds.yaml route would.
follows = Table(
    "follows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(100), nullable=False),
    Column("target", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    _ts("created", nullable=False),
    UniqueConstraint("topic", "target", name="uq_follows_topic_target"),
)

# Alerts: one row per incident (a failing feed, chat target or LLM). `open_key` is the incident's key
# while it is open and NULL once resolved, so a key has at most one open incident across workers.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False),  # "feed:NAME", "target:KIND:ADDRESS", "llm:failing", "llm:budget"
    Column("open_key", String(300)),
    Column("kind", String(20), nullable=False),  # feed-failing | feed-disabled | target | llm-failing | llm-budget
    Column("subject", Text, nullable=False),  # what fails, as it may be shown (a target's secrets hidden)
    Column("detail", Text),  # the last error seen
    _ts("started_at", nullable=False),
    _ts("last_seen_at", nullable=False),
    _ts("alerted_at"),  # when its alert was queued; NULL while it is younger than its threshold
    _ts("resolved_at"),
    Column("resolution", Text),
    UniqueConstraint("open_key", name="uq_incidents_open_key"),
    Index("ix_incidents_key", "key"),
)

# ---- Follow-ups in threads: posted stories that gained a source are found by when their brief
# changed or their message was sent.
Index("ix_briefs_updated", briefs.c.updated)
Index("ix_outbox_sent", outbox.c.sent_at)

# ---- Story matching shared by workers: the keys each story is filed under (its figures and specific
# headline words, hashed), so a worker making a story finds those other workers just made under the
# same keys (bot/store/story_keys.py). When a story was filed is its brief's `created`.
story_keys = Table(
    "story_keys",
    metadata,
    Column("key", BigInteger, primary_key=True),
    # The worker that made the story: second in the key, so a lookup reads only other workers' rows.
    Column("owner", String(100), primary_key=True),
    Column("brief_id", String(40), ForeignKey("briefs.id", ondelete="CASCADE"), primary_key=True),
    sqlite_with_rowid=False,  # the primary key is the table: one b-tree to write per row, not two
)
# A notice's held items, and a story's items, are found by the brief id they name.
Index("ix_items_brief_id", items.c.brief_id)
