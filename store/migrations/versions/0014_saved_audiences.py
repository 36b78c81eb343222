"""saved audiences: the console's audience builder keeps each saved rule as a version

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "saved_audiences",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("saved_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("saved_by", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_audiences")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_saved_audiences_name_version")),
    )
    op.create_index(op.f("ix_saved_audiences_name"), "saved_audiences", ["name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_saved_audiences_name"), table_name="saved_audiences")
    op.drop_table("saved_audiences")
