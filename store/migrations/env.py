"""Alembic environment: runs against the connection handed in by :mod:`store.migrate`."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.migration import MigrationContext, MigrationInfo

from store.models import Base

config = context.config
target_metadata = Base.metadata

connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `lifecycle migrate` (store.migrate.upgrade)")

on_step = config.attributes.get("on_step")  # reports each revision as it is applied


def _applied(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    if on_step is not None:
        on_step(step.up_revision_id or "", getattr(step.up_revision, "doc", "") or "")


context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    on_version_apply=_applied,
)
with context.begin_transaction():
    context.run_migrations()
