"""messages.topic, and an index for frequency caps

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("topic", sa.String(length=32), server_default="marketing", nullable=False)
        )
        batch_op.create_index("ix_messages_user_sent", ["user_id", "sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_user_sent")
        batch_op.drop_column("topic")
