"""broadcast holdout: the share of a broadcast's audience sent nothing, for its review

``lifecycle broadcast start --holdout 5`` holds out 5% of the audience (chosen by a salted
hash of the broadcast and the user), so the broadcast's money review can compare the
recipients with those held out. Broadcasts stored before hold nobody out.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "broadcasts", sa.Column("holdout", sa.Float(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("holdout")
