"""lifecycle_timestamptz(): read text as an instant, NULL when it is not one (PostgreSQL)

Audience rules compare timestamp traits stored as JSON text. A plain cast raises on the
first impossible value (30 February, hour 25) and fails the whole query; this function
reads only ISO-8601 instants with an explicit offset and returns NULL for anything else.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:35:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION lifecycle_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF value !~ '^\d{4}-\d{2}-\d{2}[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$'
  THEN
    RETURN NULL;
  END IF;
  RETURN value::timestamptz;
EXCEPTION WHEN others THEN
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS lifecycle_timestamptz(text)")
