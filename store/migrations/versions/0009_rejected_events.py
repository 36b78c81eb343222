"""rejected_events (the dead-letter table); events.route_attempts and the unrouted index

- ``rejected_events``: every call the API refused (raw, with the field and the reason) and
  every stored event the router gave up on after repeated failures, until replayed;
- ``events.route_attempts``: failed routing attempts; at the limit an event is parked (it
  stays unrouted, and the pending-event loop passes it by);
- ``ix_events_unrouted``: the pending-event loop reads unrouted events without scanning the
  whole table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNROUTED = sa.text("routed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "rejected_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("field", sa.String(length=512), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("received_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replay_result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_events")),
    )
    op.create_index("ix_rejected_events_received_at", "rejected_events", ["received_at"])
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("route_attempts", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_index(
        "ix_events_unrouted", "events", ["id"], postgresql_where=UNROUTED, sqlite_where=UNROUTED
    )


def downgrade() -> None:
    op.drop_index("ix_events_unrouted", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("route_attempts")
    op.drop_index("ix_rejected_events_received_at", table_name="rejected_events")
    op.drop_table("rejected_events")
