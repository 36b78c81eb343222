"""users.trait_times and push_tokens.registered_at: facts keep the time they happened

- ``users.trait_times``: each profile field's time (field → ISO instant of the identify call
  that set it). Traits stored before this revision are dated by their row's ``updated_at``,
  the latest instant any of them can have been set;
- ``push_tokens.registered_at``: when the registration the row holds happened; existing rows
  take ``created_at``.

Consent needs no column: ``consents.updated_at`` already holds the time of the change.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# users.updated_at as an ISO instant, per dialect (SQLite keeps naive UTC text).
_DATE_TRAITS = {
    "sqlite": """
        UPDATE users SET trait_times = (
            SELECT json_group_object(key, replace(users.updated_at, ' ', 'T') || '+00:00')
            FROM json_each(users.traits)
        )
        WHERE json_type(traits) = 'object'
    """,
    "postgresql": """
        UPDATE users SET trait_times = coalesce((
            SELECT jsonb_object_agg(
                key,
                to_char(users.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
            )
            FROM jsonb_each(users.traits)
        ), '{}'::jsonb)
        WHERE jsonb_typeof(traits) = 'object'
    """,
}


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "trait_times",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default="{}",
                nullable=False,
            )
        )
    with op.batch_alter_table("push_tokens") as batch:
        batch.add_column(
            sa.Column("registered_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(_DATE_TRAITS[op.get_bind().dialect.name])
    op.execute("UPDATE push_tokens SET registered_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("push_tokens") as batch:
        batch.drop_column("registered_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("trait_times")
