"""``INSERT ... ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL alike."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import Base

M = TypeVar("M", bound=Base)


def insert_ignore(session: Session, model: type[Base], *, values: dict[str, Any]) -> bool:
    """Insert one row unless a unique constraint already holds it; True if inserted."""
    insert = _insert(session.get_bind().dialect.name)
    # RETURNING, not rowcount: SQLAlchemy adds an implicit RETURNING on PostgreSQL, after
    # which rowcount is -1. A conflict returns no row on both databases.
    stmt = insert(model).values(**values).on_conflict_do_nothing()
    return session.execute(stmt.returning(literal_column("1"))).first() is not None


def insert_new(session: Session, model: type[M], *, values: dict[str, Any]) -> M | None:
    """Insert one row unless a unique constraint already holds it: the new row (in the
    session, and locked by this transaction until it ends, as any row it inserted), or None
    on a conflict. One statement where an insert and a read would be two."""
    insert = _insert(session.get_bind().dialect.name)
    stmt = insert(model).values(**values).on_conflict_do_nothing().returning(model)
    return session.scalars(stmt).first()


def insert_new_columns(
    session: Session, model: type[Base], *, values: dict[str, Any], columns: Sequence[Any]
) -> Any:
    """As :func:`insert_new`, for a caller that needs only ``columns`` of the new row (its
    id, what it reports): a Core statement with no loaded object, cheaper than the ORM's.
    Returns that row, or None on a conflict."""
    written = insert_returning_many(session, model, rows=[values], columns=columns)
    return written[0] if written else None


def insert_ignore_many(session: Session, model: type[Base], *, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in one statement, skipping those a unique constraint already holds."""
    if not rows:
        return
    insert = _insert(session.get_bind().dialect.name)
    # Executemany: the statement compiles once and is cached; the driver batches the rows.
    # Core, on the session's connection, after what the session holds is written.
    session.flush()
    session.connection().execute(insert(model).on_conflict_do_nothing(), rows)


def insert_returning_many(
    session: Session,
    model: type[Base],
    *,
    rows: list[dict[str, Any]],
    columns: Sequence[Any],
) -> list[Any]:
    """Insert many rows in one statement, skipping those a unique constraint already holds;
    ``columns`` of the rows it wrote (those skipped are not among them)."""
    if not rows:
        return []
    stmt = _returning(session.get_bind().dialect.name, model, tuple(c.key for c in columns))
    session.flush()  # Core, as above
    return list(session.connection().execute(stmt, rows).all())


@functools.cache
def _returning(dialect: str, model: type[Base], names: tuple[str, ...]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING`` the model's attributes ``names``,
    built once per dialect, model and names (a statement built once keeps its cache key)."""
    insert = _insert(dialect)
    return insert(model).on_conflict_do_nothing().returning(*(getattr(model, n) for n in names))


def _insert(dialect: str) -> Any:
    """The dialect's ``insert``, the one with ``on_conflict_do_nothing``."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
