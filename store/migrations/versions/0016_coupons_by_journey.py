"""coupons by journey: a journey's coupons, issued since a day

A journey's report counts the coupons it issued (and redeemed), all of them or those issued
since a day. Without this index each report read the whole coupons table, even for a
journey that issued none.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_coupons_journey_issued", "coupons", ["journey_id", "issued_at"])


def downgrade() -> None:
    op.drop_index("ix_coupons_journey_issued", table_name="coupons")
