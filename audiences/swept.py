"""A schedule's audience with the database at hand: a shipped audience or an inline rule as
written, else the audience saved under that name (the lookup broadcasts and the command line
use: shipped first, else the latest saved version).

A sweep resolves the name once, when its tick begins, and keeps that saved version for all
its pages, so a version saved in the middle of a sweep changes the next tick, never half of
this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from audiences.audience import Audience
from audiences.saved import named_version
from journeys.models import Schedule
from journeys.schedule import UnknownAudience, schedule_audience
from store.saved_audiences import saved_names


@dataclass(frozen=True)
class SweptAudience:
    """The audience a tick sweeps and, for a saved one, the version it is."""

    audience: Audience
    version: int | None = None  # None: shipped or written inline

    @property
    def label(self) -> str:
        """How a log line names it: ``vip_shanghai v3``, a shipped id, or ``inline rule``."""
        if self.version is not None:
            return f"{self.audience.id} v{self.version}"
        return self.audience.id if self.audience.id != "adhoc" else "inline rule"


def swept_audience(
    session: Session, schedule: Schedule, *, version: int | None = None
) -> SweptAudience:
    """The audience ``schedule`` names now; ``version`` pins a saved audience's version.

    Raises:
        UnknownAudience: no shipped or saved audience has the name (or the pinned version is
            gone); the message lists the names there are.
        audiences.rules.AudienceError: an inline or saved rule is unusable.
    """
    try:
        return SweptAudience(schedule_audience(schedule))
    except UnknownAudience as exc:
        name = exc.name
    found = named_version(session, name, version=version)
    if found is None:
        raise UnknownAudience(name, saved_names(session))
    return SweptAudience(*found)
