"""What the router reads about journeys: the events any version acts on, and each version's
parsed spec and the properties its runs get, cached (published versions never change)."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from journeys.models import Journey
from journeys.used_properties import UsedProperties, used_properties
from store.journeys import live_versions, spec_of
from store.models import JourneyVersion

# Events the router acts on whatever the journeys say: a coupon of ours was used.
REDEEMING_EVENTS = ("coupon_redeemed", "order_placed")


# Built once: asked in the transaction of every batch stored.
_NEWEST = select(func.max(JourneyVersion.id))


class ActedOnEvents:
    """The names of the events any journey version acts on: what a published version can
    start (its trigger) and what running enrollments of any version listen for (goal, exits,
    waits, restarts), plus the coupon redemptions. Any other event is only stored.

    Calling it in a transaction answers as the versions stand there: one look at the newest
    version's id (the primary key's index) tells whether anything was published since the
    last call, and only then are the versions re-read, so an event received after a
    publish is judged by it. Versions never change, so each is parsed once.
    """

    def __init__(self) -> None:
        self._by_version: dict[tuple[str, int], frozenset[str]] = {}
        self._names: frozenset[str] | None = None
        self._newest: int | None = None
        self._lock = threading.Lock()

    def __call__(self, session: Session) -> frozenset[str]:
        return self.as_of(session, session.connection().execute(_NEWEST).scalar())

    def as_of(self, session: Session, newest: int | None) -> frozenset[str]:
        """The names, where the caller has read the newest version's id (``newest``)."""
        with self._lock:
            if self._names is not None and newest == self._newest:
                return self._names
            self._names, self._newest = self.read(session), newest
            return self._names

    def read(self, session: Session) -> frozenset[str]:
        """The names, as the versions stand in ``session``."""
        versions = [
            tuple(v)
            for v in session.execute(select(JourneyVersion.journey_id, JourneyVersion.version))
        ]
        missing = {
            journey_id
            for journey_id, version in versions
            if (journey_id, version) not in self._by_version
        }
        if missing:
            for row in session.scalars(
                select(JourneyVersion).where(JourneyVersion.journey_id.in_(missing))
            ):
                journey = spec_of(row)
                found = set(journey.listens_for())
                if journey.trigger.event is not None:
                    found.add(journey.trigger.event)
                self._by_version[(row.journey_id, row.version)] = frozenset(found)
        names = set(REDEEMING_EVENTS)
        for key in versions:
            names |= self._by_version.get(key, frozenset())  # type: ignore[arg-type]
        return frozenset(names)


class JourneySpecs:
    """Journey versions as the router uses them: each parsed once, and the properties its
    runs get read once (Temporal history keeps what it is sent; templates are files)."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, int], Journey] = {}
        self._uses: dict[tuple[str, int], UsedProperties] = {}

    def spec(self, session: Session, journey_id: str, version: int) -> Journey:
        """The parsed spec of ``journey_id`` at ``version``."""
        cached = self._specs.get((journey_id, version))
        if cached is None:
            row = session.scalars(
                select(JourneyVersion).where(
                    JourneyVersion.journey_id == journey_id, JourneyVersion.version == version
                )
            ).one()
            cached = self._specs[(journey_id, version)] = spec_of(row)
        return cached

    def published(self, session: Session) -> list[tuple[int, Journey]]:
        """The published journeys, each with its version."""
        return self.published_and_newest(session)[0]

    def published_and_newest(
        self, session: Session
    ) -> tuple[list[tuple[int, Journey]], int | None]:
        """The published journeys, each with its version, and the newest version's id (for
        :class:`ActedOnEvents`), in one statement."""
        # Statuses only: a version's spec is parsed once and cached (versions never change).
        live, newest = live_versions(session)
        published = [
            (version, self.spec(session, journey_id, version))
            for journey_id, version, status in live
            if status == "published"
        ]
        return published, newest

    def cached_used(self, journey: Journey, version: int) -> UsedProperties | None:
        """The properties runs of this journey version get, if already read."""
        return self._uses.get((journey.id, version))

    def used(self, journey: Journey, version: int) -> UsedProperties:
        """The properties runs of this journey version get (read once: templates are files)."""
        uses = self._uses.get((journey.id, version))
        if uses is None:
            uses = self._uses[(journey.id, version)] = used_properties(journey)
        return uses
