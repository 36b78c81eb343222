"""message segments: the ledger keeps the SMS segments each send was billed as

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows written before are priced from their outbox body, else as 1 segment.
    op.add_column("messages", sa.Column("segments", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("segments")
