"""Follow-ups in threads: what each sent message showed of its story, and the indexes that find
posted stories which gained a source.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("sources_shown", sa.Integer))
    op.add_column("outbox", sa.Column("figures_shown", sa.Integer))
    op.create_index("ix_briefs_updated", "briefs", ["updated"])
    op.create_index("ix_outbox_sent", "outbox", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_sent", table_name="outbox")
    op.drop_index("ix_briefs_updated", table_name="briefs")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("figures_shown")
        batch.drop_column("sources_shown")
