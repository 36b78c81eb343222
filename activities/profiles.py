"""Profile-based computations a workflow cannot do itself (timezones need zoneinfo)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio import activity

from store.db import SessionFactory
from store.models import User
from workflows.journey_contracts import NEXT_LOCAL_TIME, LocalTimeInput


def next_local_time(now: datetime, hh_mm: str, zone: str) -> datetime:
    """The first instant strictly after ``now`` when the wall clock in ``zone`` reads
    ``hh_mm``; on a day the clock skips it (DST), the instant just after the gap."""
    tz = ZoneInfo(zone)
    hour, minute = (int(part) for part in hh_mm.split(":"))
    local_now = now.astimezone(tz)
    for days in range(3):
        day = local_now.date() + timedelta(days=days)
        candidate = datetime.combine(day, time(hour, minute), tzinfo=tz)
        # A wall time inside a DST gap does not exist: round-trip through UTC moves it past.
        candidate = candidate.astimezone(UTC).astimezone(tz)
        if candidate > local_now:
            return candidate.astimezone(UTC)
    raise AssertionError("a wall-clock time recurs within three days")


class ProfileActivities:
    def __init__(self, factory: SessionFactory, *, default_timezone: str):
        self._factory = factory
        self._default_timezone = default_timezone

    @activity.defn(name=NEXT_LOCAL_TIME)
    def next_local_time(self, inp: LocalTimeInput) -> datetime:
        """The next ``inp.hh_mm`` in the user's timezone (the default one if unknown)."""
        with self._factory() as session:
            user = session.get(User, inp.user_id)
        zone = (user.timezone if user else None) or self._default_timezone
        try:
            return next_local_time(inp.now, inp.hh_mm, zone)
        except ZoneInfoNotFoundError:
            return next_local_time(inp.now, inp.hh_mm, self._default_timezone)
