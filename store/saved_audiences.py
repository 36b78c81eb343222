"""Saved audiences: each save of a named rule is a new version; the latest is what the name
means. Data access only (the caller owns the transaction); the rule language is checked by
:mod:`audiences.saved` before anything is stored here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import SavedAudience


def latest_saved(session: Session, *, name: str) -> SavedAudience | None:
    """The latest version saved under ``name``, if any."""
    return session.scalars(
        select(SavedAudience)
        .where(SavedAudience.name == name)
        .order_by(SavedAudience.version.desc())
        .limit(1)
    ).first()


def saved_version(session: Session, *, name: str, version: int) -> SavedAudience | None:
    """One version saved under ``name``, if it is still there."""
    return session.scalars(
        select(SavedAudience).where(SavedAudience.name == name, SavedAudience.version == version)
    ).first()


def saved_names(session: Session) -> list[str]:
    """The name of every saved audience, sorted."""
    return list(session.scalars(select(SavedAudience.name).distinct().order_by(SavedAudience.name)))


def saved_versions(session: Session, *, name: str) -> list[SavedAudience]:
    """Every version saved under ``name``, newest first."""
    return list(
        session.scalars(
            select(SavedAudience)
            .where(SavedAudience.name == name)
            .order_by(SavedAudience.version.desc())
        )
    )


def latest_of_each(session: Session) -> list[SavedAudience]:
    """The latest version of every saved audience, by name."""
    newest = (
        select(SavedAudience.name, func.max(SavedAudience.version).label("version"))
        .group_by(SavedAudience.name)
        .subquery()
    )
    return list(
        session.scalars(
            select(SavedAudience)
            .join(
                newest,
                (SavedAudience.name == newest.c.name) & (SavedAudience.version == newest.c.version),
            )
            .order_by(SavedAudience.name)
        )
    )


def add_version(
    session: Session, *, name: str, source: str, saved_by: str, note: str, now: datetime
) -> SavedAudience:
    """Store ``source`` as the next version of ``name`` (version 1 for a new name)."""
    before = latest_saved(session, name=name)
    row = SavedAudience(
        name=name,
        version=1 if before is None else before.version + 1,
        source=source,
        saved_at=now,
        saved_by=saved_by,
        note=note,
    )
    session.add(row)
    session.flush()
    return row
