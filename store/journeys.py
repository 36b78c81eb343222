"""Published journey versions: publish, list, and the live set the router reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from journeys.models import Journey
from store.models import JourneyVersion


def publish(session: Session, *, journey: Journey, source: str, now: datetime) -> JourneyVersion:
    """Publish ``journey`` as a new version, unless it equals the latest one.

    Running enrollments keep the version they started with; new entries take this one.
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


def live_versions(session: Session) -> list[tuple[str, int, str]]:
    """(journey, version, status) of every journey's latest version, without its source and
    spec: for callers that keep parsed specs of their own (versions never change)."""
    newest = _newest()
    stmt = (
        select(JourneyVersion.journey_id, JourneyVersion.version, JourneyVersion.status)
        .join(
            newest,
            (JourneyVersion.journey_id == newest.c.journey_id)
            & (JourneyVersion.version == newest.c.v),
        )
        .order_by(JourneyVersion.journey_id)
    )
    return [(j, v, status) for j, v, status in session.execute(stmt)]


def spec_of(row: JourneyVersion) -> Journey:
    return Journey.model_validate(row.spec)


def journey_paused(session: Session, *, journey_id: str) -> bool:
    """Whether the journey's latest version is paused (its sends are held)."""
    status = session.scalar(
        select(JourneyVersion.status)
        .where(JourneyVersion.journey_id == journey_id)
        .order_by(JourneyVersion.version.desc())
        .limit(1)
    )
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
