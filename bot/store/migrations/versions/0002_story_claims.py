"""Story matching shared by workers: claims on story keys, and the index that finds an item's brief.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_keys",
        sa.Column("key", sa.BigInteger, primary_key=True),
        sa.Column("owner", sa.String(100), primary_key=True),
        sa.Column("brief_id", sa.String(40), sa.ForeignKey("briefs.id", ondelete="CASCADE"), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_items_brief_id", "items", ["brief_id"])


def downgrade() -> None:
    op.drop_index("ix_items_brief_id", table_name="items")
    op.drop_table("story_keys")
