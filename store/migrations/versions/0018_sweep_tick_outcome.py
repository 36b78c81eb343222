"""sweep ticks say which saved audience version they reached, and why one failed

A journey's schedule may name a saved audience: each tick sweeps its latest version, now
recorded on the tick. A tick that stops for good (its saved audience was deleted since
publishing) records why and when, so ``lifecycle sweeps list`` says "failed" instead of
"running" forever.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweep_ticks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweep_ticks", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.drop_column("audience_version")
