"""enrollments by journey and entry time: a journey's runs entered since a day

A journey's report for the runs entered since a day (the console's ``?since=``, ``lifecycle
report --since``) and its conversion chart select them by journey and ``entered_at``.
Without this index each such report read every run of every journey.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 12:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_enrollments_journey_entered", "enrollments", ["journey_id", "entered_at"])


def downgrade() -> None:
    op.drop_index("ix_enrollments_journey_entered", table_name="enrollments")
