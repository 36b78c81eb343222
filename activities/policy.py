"""Delivery-policy rules that are pure functions of time: quiet hours in the user's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from activities.profiles import next_local_time


@dataclass(frozen=True)
class QuietHours:
    """A nightly window in local time, e.g. 21:00–08:00 (it may cross midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-08:00"`` → QuietHours(21:00, 08:00)."""
        start, end = (time.fromisoformat(part) for part in text.split("-"))
        return cls(start, end)

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def defer_until(self, now: datetime, zone: str) -> datetime | None:
        """The instant the window ends, if ``now`` is inside it in ``zone``; else None.

        Computed on the wall clock of ``zone``, so a DST change inside the night moves the
        instant, not the local hour.
        """
        local = now.astimezone(ZoneInfo(zone))
        if not self.contains(local.time().replace(second=0, microsecond=0)):
            return None
        return next_local_time(now, self.end.strftime("%H:%M"), zone)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``limit`` marketing sends per user in ``window`` (on ``channel``, or on all
    channels when it is None), counted across every journey."""

    limit: int
    window: timedelta
    channel: str | None = None
