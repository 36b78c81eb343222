"""audience indexes: events by name and time, order probes, unused coupons, opt-outs

The plans of the shipped audiences on 1M users / 10M events (``bench/audiences.py``):

- ``ix_events_event_ts_user``: one event's rows in a window (carts of the last 7 days,
  orders of the last 90) without reading the whole events table;
- ``ix_events_orders_user_ts``: the per-user "ordered since?" probes of open carts and
  never-ordered users, in an index a tenth the size of ``ix_events_user_event_ts``;
- ``ix_coupons_unredeemed_expires``: unused coupons expiring soon, with their holder;
- ``ix_consents_unsubscribed``: the opt-outs of one channel and topic.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ORDERS = sa.text("event = 'order_placed'")
UNREDEEMED = sa.text("redeemed_at IS NULL")
UNSUBSCRIBED = sa.text("status = 'unsubscribed'")


def upgrade() -> None:
    op.create_index("ix_events_event_ts_user", "events", ["event", "timestamp", "user_id"])
    op.create_index(
        "ix_events_orders_user_ts",
        "events",
        ["user_id", "timestamp"],
        postgresql_where=ORDERS,
        sqlite_where=ORDERS,
    )
    op.create_index(
        "ix_coupons_unredeemed_expires",
        "coupons",
        ["expires_at", "user_id"],
        postgresql_where=UNREDEEMED,
        sqlite_where=UNREDEEMED,
    )
    op.create_index(
        "ix_consents_unsubscribed",
        "consents",
        ["channel", "topic", "user_id"],
        postgresql_where=UNSUBSCRIBED,
        sqlite_where=UNSUBSCRIBED,
    )


def downgrade() -> None:
    op.drop_index("ix_consents_unsubscribed", table_name="consents")
    op.drop_index("ix_coupons_unredeemed_expires", table_name="coupons")
    op.drop_index("ix_events_orders_user_ts", table_name="events")
    op.drop_index("ix_events_event_ts_user", table_name="events")
