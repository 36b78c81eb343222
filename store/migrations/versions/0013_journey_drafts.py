"""journey drafts; who published each journey version and with what note

A journey's unpublished edit is kept in ``journey_drafts``, one row per journey, rather than
as a version with a draft status: versions are what ran, numbered in the order they went
live, and every reader of "the latest version" would otherwise have to skip drafts. Versions
published before this have no note and no author.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("journey_versions", sa.Column("note", sa.Text(), nullable=True))
    op.add_column(
        "journey_versions", sa.Column("published_by", sa.String(length=128), nullable=True)
    )
    op.create_table(
        "journey_drafts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("journey_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("saved_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("saved_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_drafts")),
        sa.UniqueConstraint("journey_id", name=op.f("uq_journey_drafts_journey_id")),
    )


def downgrade() -> None:
    op.drop_table("journey_drafts")
    with op.batch_alter_table("journey_versions") as batch:
        batch.drop_column("published_by")
        batch.drop_column("note")
