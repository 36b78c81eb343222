"""the ledger by creation time: the Messages page reads one page, whatever it filters on

The console's Messages page lists the ledger newest first, by ``(created_at, id)``, between
two days and filtered by journey (and step), channel, status or reason. Each of those is
served by an index in that order, so a page far in the past or of a rare value reads about
one page of rows instead of most of the ledger. The journey and step index gains the two
ordering columns (its other readers use its first columns).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 10:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# Name, then columns; each ends with the page's order.
INDEXES = (
    ("ix_messages_created", ["created_at", "id"]),
    ("ix_messages_channel_created", ["channel", "created_at", "id"]),
    ("ix_messages_status_created", ["status", "created_at", "id"]),
    ("ix_messages_reason_created", ["reason", "created_at", "id"]),
    ("ix_messages_journey_created", ["journey_id", "created_at", "id"]),
    ("ix_messages_journey_step_created", ["journey_id", "step_id", "created_at", "id"]),
)


def upgrade() -> None:
    op.drop_index("ix_messages_journey_step", table_name="messages")
    for name, columns in INDEXES:
        op.create_index(name, "messages", columns)


def downgrade() -> None:
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name="messages")
    op.create_index("ix_messages_journey_step", "messages", ["journey_id", "step_id"])
