"""An index for a target's latest sent and latest failed delivery (the alert check reads them for
every configured target each minute).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_target_status_id", "outbox", ["target", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_target_status_id", table_name="outbox")
