"""Published journey versions: publish, list, the live set the router reads, and each
journey's history (who published what, when, with what note, and what changed)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, Subquery, bindparam, func, select
from sqlalchemy.orm import Session

from journeys.models import Journey
from store.models import JourneyVersion


def publish(
    session: Session,
    *,
    journey: Journey,
    source: str,
    now: datetime,
    note: str | None = None,
    published_by: str | None = None,
) -> JourneyVersion:
    """Publish ``journey`` as a new version, unless it equals the latest one.

    Running enrollments keep the version they started with; new entries take this one.
    ``note`` says why and ``published_by`` who; an unchanged journey keeps the latest
    version's own.
    """
    spec = journey.model_dump(mode="json")
    latest = latest_version(session, journey_id=journey.id)
    if latest is not None and latest.spec == spec:
        return latest  # unchanged: keep its version and status (a paused journey stays paused)
    version = JourneyVersion(
        journey_id=journey.id,
        version=(latest.version + 1) if latest else 1,
        source=source,
        spec=spec,
        status="published",
        published_at=now,
        note=note or None,
        published_by=published_by,
    )
    if latest is not None:
        latest.status = "archived"
    session.add(version)
    session.flush()
    return version


def latest_version(session: Session, *, journey_id: str) -> JourneyVersion | None:
    stmt = (
        select(JourneyVersion)
        .where(JourneyVersion.journey_id == journey_id)
        .order_by(JourneyVersion.version.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def _newest() -> Subquery:
    return (
        select(JourneyVersion.journey_id, func.max(JourneyVersion.version).label("v"))
        .group_by(JourneyVersion.journey_id)
        .subquery()
    )


def live_journeys(session: Session) -> list[JourneyVersion]:
    """The latest version of every journey, published or paused."""
    newest = _newest()
    stmt = (
        select(JourneyVersion)
        .join(
            newest,
            (JourneyVersion.journey_id == newest.c.journey_id)
            & (JourneyVersion.version == newest.c.v),
        )
        .order_by(JourneyVersion.journey_id)
    )
    return list(session.scalars(stmt))


def _live_versions_stmt() -> Select[str, int, str, int | None]:
    newest = _newest()
    return (
        select(
            JourneyVersion.journey_id,
            JourneyVersion.version,
            JourneyVersion.status,
            select(func.max(JourneyVersion.id)).scalar_subquery(),
        )
        .join(
            newest,
            (JourneyVersion.journey_id == newest.c.journey_id)
            & (JourneyVersion.version == newest.c.v),
        )
        .order_by(JourneyVersion.journey_id)
    )


# Built once: the router asks it for every batch it routes.
_LIVE_VERSIONS = _live_versions_stmt()


def live_versions(session: Session) -> tuple[list[tuple[str, int, str]], int | None]:
    """(journey, version, status) of every journey's latest version, without its source and
    spec: for callers that keep parsed specs of their own (versions never change); and the
    id of the newest version row (a publish since changes it), read in the same statement."""
    rows = session.connection().execute(_LIVE_VERSIONS).all()
    return [(j, v, status) for j, v, status, _ in rows], (rows[0][3] if rows else None)


def spec_of(row: JourneyVersion) -> Journey:
    return Journey.model_validate(row.spec)


# Built once: every journey send asks it.
_LATEST_STATUS = (
    select(JourneyVersion.status)
    .where(JourneyVersion.journey_id == bindparam("journey_id"))
    .order_by(JourneyVersion.version.desc())
    .limit(1)
)


def journey_paused(session: Session, *, journey_id: str) -> bool:
    """Whether the journey's latest version is paused (its sends are held)."""
    session.flush()  # a pause in this session counts (Core reads no pending object)
    status = session.connection().execute(_LATEST_STATUS, {"journey_id": journey_id}).scalar()
    return status == "paused"


def set_status(session: Session, *, journey_id: str, status: str) -> JourneyVersion:
    """Pause (``paused``) or resume (``published``) a journey's latest version.

    Raises:
        LookupError: nothing was ever published under ``journey_id``.
    """
    latest = latest_version(session, journey_id=journey_id)
    if latest is None:
        raise LookupError(f"no journey {journey_id!r} has been published")
    latest.status = status
    return latest


@dataclass(frozen=True)
class HistoryEntry:
    """One published version and what it changed from the one before (the first version's
    diff is its whole source)."""

    version: JourneyVersion
    diff: str


def source_diff(before: str, after: str, *, before_name: str, after_name: str) -> str:
    """A unified diff of two journey YAMLs ("" when they are the same text)."""
    return "".join(
        difflib.unified_diff(_lines(before), _lines(after), fromfile=before_name, tofile=after_name)
    )


def _lines(text: str) -> list[str]:
    # A last line without its newline would run into the diff's next line.
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(True)]


def version_of(session: Session, *, journey_id: str, version: int) -> JourneyVersion | None:
    return session.scalar(
        select(JourneyVersion).where(
            JourneyVersion.journey_id == journey_id, JourneyVersion.version == version
        )
    )


def history(session: Session, *, journey_id: str) -> list[HistoryEntry]:
    """Every version of a journey, newest first, each with its diff against its predecessor."""
    rows = list(
        session.scalars(
            select(JourneyVersion)
            .where(JourneyVersion.journey_id == journey_id)
            .order_by(JourneyVersion.version)
        )
    )
    entries, before, before_name = [], "", "/dev/null"
    for row in rows:
        name = f"{journey_id} v{row.version}"
        entries.append(
            HistoryEntry(
                row, source_diff(before, row.source, before_name=before_name, after_name=name)
            )
        )
        before, before_name = row.source, name
    return entries[::-1]
