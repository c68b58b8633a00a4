"""Open incidents (failing feeds, chat targets, the LLM) so each gets one alert and one recovery.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ts(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("open_key", sa.String(300)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        _ts("started_at", nullable=False),
        _ts("last_seen_at", nullable=False),
        _ts("alerted_at"),
        _ts("resolved_at"),
        sa.Column("resolution", sa.Text),
        sa.UniqueConstraint("open_key", name="uq_incidents_open_key"),
    )
    op.create_index("ix_incidents_key", "incidents", ["key"])


def downgrade() -> None:
    op.drop_index("ix_incidents_key", table_name="incidents")
    op.drop_table("incidents")
