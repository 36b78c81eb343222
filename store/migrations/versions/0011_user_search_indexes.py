"""user search indexes: an email in any case, a phone as stored

``lifecycle users find`` and the console's user search look a user up by email (compared
lower-cased) or by phone (E.164). Without these, each look-up read the whole users table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_email_lower", "users", [sa.text("lower(email)")])
    op.create_index("ix_users_phone", "users", ["phone"])


def downgrade() -> None:
    op.drop_index("ix_users_phone", table_name="users")
    op.drop_index("ix_users_email_lower", table_name="users")
