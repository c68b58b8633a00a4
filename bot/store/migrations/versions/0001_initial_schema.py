"""Initial schema: feeds, items, briefs, outbox, digests, LLM cache/usage, leases.

A frozen copy of bot/store/schema.py as it was when migrations were introduced. Later schema
changes go in new revisions; this file never changes (databases already at 0001 would not see it).

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("body_hash", sa.String(64)),
        _ts("last_fetch_at"),
        _ts("last_success_at"),
        sa.Column("last_status", sa.String(40)),
        sa.Column("last_problem", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        _ts("next_poll_at"),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("items_total", sa.Integer, nullable=False),
        sa.Column("first_polled", sa.Boolean, nullable=False),
        sa.Column("lease_owner", sa.String(100)),
        _ts("lease_until"),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feed", sa.String(200), nullable=False),
        sa.Column("item_key", sa.String(80), nullable=False),
        sa.Column("guid", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("link_key", sa.String(64)),
        sa.Column("content_key", sa.String(64)),
        sa.Column("title", sa.Text),
        _ts("published"),
        _ts("seen_at", nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("topics", sa.JSON),
        sa.Column("brief_id", sa.String(40)),
        sa.UniqueConstraint("feed", "item_key", name="uq_items_feed_key"),
    )
    op.create_index("ix_items_feed_link", "items", ["feed", "link_key"])
    op.create_index("ix_items_feed_content", "items", ["feed", "content_key"])
    op.create_table(
        "briefs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("mode", sa.String(12), nullable=False),
        _ts("created", nullable=False),
        _ts("updated", nullable=False),
        _ts("published"),
        sa.Column("language", sa.String(8)),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("signature", sa.JSON),
    )
    op.create_index("ix_briefs_created", "briefs", ["created"])
    op.create_table(
        "brief_topics",
        sa.Column("brief_id", sa.String(40), sa.ForeignKey("briefs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("topic", sa.String(100), primary_key=True),
        _ts("created", nullable=False),
    )
    op.create_index("ix_brief_topics_topic_created", "brief_topics", ["topic", "created"])
    op.create_table(
        "brief_sources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("brief_id", sa.String(40), sa.ForeignKey("briefs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("feed", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        _ts("published"),
        _ts("added", nullable=False),
        sa.UniqueConstraint("brief_id", "feed", "url", name="uq_brief_sources"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("ref_id", sa.String(80), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("created", nullable=False),
        _ts("next_attempt_at", nullable=False),
        _ts("sent_at"),
        sa.Column("last_error", sa.Text),
        sa.Column("external_id", sa.Text),
        sa.Column("lease_owner", sa.String(100)),
        _ts("lease_until"),
        sa.UniqueConstraint("kind", "ref_id", "target", name="uq_outbox_delivery"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "digest_runs",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        _ts("scheduled_for", nullable=False),
        _ts("created", nullable=False),
        sa.Column("owner", sa.String(100)),
        sa.Column("doc", sa.JSON),
    )
    op.create_table(
        "llm_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("reply", sa.JSON, nullable=False),
        _ts("created", nullable=False),
    )
    op.create_table(
        "llm_usage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("outcome", sa.String(20), nullable=False),
        _ts("created", nullable=False),
    )
    op.create_index("ix_llm_usage_day", "llm_usage", ["day"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        _ts("until", nullable=False),
    )


def downgrade() -> None:
    for index, table in (("ix_llm_usage_day", "llm_usage"), ("ix_outbox_due", "outbox"),
                         ("ix_brief_topics_topic_created", "brief_topics"), ("ix_briefs_created", "briefs"),
                         ("ix_items_feed_content", "items"), ("ix_items_feed_link", "items")):
        op.drop_index(index, table_name=table)
    for table in ("leases", "llm_usage", "llm_cache", "digest_runs", "outbox", "brief_sources", "brief_topics",
                  "briefs", "items", "feeds"):
        op.drop_table(table)
