"""sweep_ticks and broadcasts; messages.broadcast_id and messages.deferred_until

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sweep_ticks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("journey_id", sa.String(length=128), nullable=False),
        sa.Column("tick", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workflow_id", sa.String(length=512), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.String(length=255), nullable=True),
        sa.Column("members", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("entered", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_ticks")),
        sa.UniqueConstraint("journey_id", "tick", name=op.f("uq_sweep_ticks_journey_id_tick")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_sweep_ticks_workflow_id")),
    )
    op.create_table(
        "broadcasts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "audience",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("audience_source", sa.String(length=1024), nullable=False),
        sa.Column("template", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=32), server_default="marketing", nullable=False),
        sa.Column("send_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rate_per_second", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("workflow_id", sa.String(length=512), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.String(length=255), nullable=True),
        sa.Column("recipients", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_broadcasts_workflow_id")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("broadcast_id", BigId, nullable=True))
        batch_op.add_column(
            sa.Column("deferred_until", store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_messages_broadcast_id"), ["broadcast_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_broadcast_id_broadcasts"),
            "broadcasts",
            ["broadcast_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_messages_broadcast_id_broadcasts"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_messages_broadcast_id"))
        batch_op.drop_column("deferred_until")
        batch_op.drop_column("broadcast_id")
    op.drop_table("broadcasts")
    op.drop_table("sweep_ticks")
