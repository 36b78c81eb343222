"""Schedule triggers: parsing a journey's cron, and the tick a sweep belongs to.

A journey's ``trigger.schedule.cron`` is a standard crontab line (``minute hour day month
day-of-week``, ``0 10 * * *`` = every day at 10:00) or, for tests and very frequent sweeps,
six fields with seconds first (``*/1 * * * * *``). Day-of-week numbers follow cron (0 and 7
are Sunday), not APScheduler's own numbering (0 is Monday), so ``0 10 * * 1-5`` means
weekdays whoever reads it.

:func:`last_tick` is the heart of running sweeps on several scheduler replicas: APScheduler
does not tell a job which fire time it is running for, and replicas' clocks differ by a few
milliseconds, so each replica asks "what is the latest scheduled instant at or before now?"
and they all get the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from audiences.audience import Audience, audience_from_data, shipped_audiences
from audiences.rules import AudienceError
from journeys.models import Schedule

_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# How far back to look for the previous fire time, widening until one is found (a yearly
# cron needs the widest window; a per-second one the narrowest, which keeps the walk short).
_LOOKBACK = (
    timedelta(minutes=2),
    timedelta(hours=2),
    timedelta(days=2),
    timedelta(days=40),
    timedelta(days=370),
    timedelta(days=366 * 8 + 2),
)


class ScheduleError(ValueError):
    """A cron line or timezone that cannot be used."""


AUDIENCE_FIELD = "trigger.schedule.audience"


class UnknownAudience(AudienceError):
    """A schedule's audience name that is not shipped: a saved audience's, or nobody's.

    ``saved`` lists the saved audiences' names when they were looked up (the message then
    names every audience the field may name); None when no database was consulted.
    """

    def __init__(self, name: str, saved: Collection[str] | None = None):
        self.name = name
        known = f"shipped: {', '.join(sorted(shipped_audiences()))}"
        if saved is not None:
            known += f"; saved: {', '.join(sorted(saved)) or 'none'}"
        super().__init__(AUDIENCE_FIELD, f"unknown audience {name!r}; {known}")


def _day_names(field: str) -> str:
    """Cron's numeric days of the week (0/7 = Sunday) as names APScheduler reads alike."""

    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise ScheduleError(f"day of week {number} is not 0-7")
        return _DAYS[number]

    if "/" in field:  # a step counts positions, and names would change its meaning
        return field
    return re.sub(r"\d+", name, field)


def cron_trigger(schedule: Schedule) -> CronTrigger:
    """The APScheduler trigger for a journey's schedule; :class:`ScheduleError` if unusable."""
    try:
        zone = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {schedule.timezone!r}") from None
    fields = schedule.cron.split()
    try:
        if len(fields) == 5:
            minute, hour, day, month, dow = fields
            second = "0"
        elif len(fields) == 6:
            second, minute, hour, day, month, dow = fields
        else:
            raise ScheduleError(
                f"cron {schedule.cron!r} needs 5 fields (minute hour day month day-of-week) "
                "or 6 with seconds first"
            )
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_day_names(dow),
            timezone=zone,
        )
    except ScheduleError:
        raise
    except ValueError as exc:
        raise ScheduleError(f"cron {schedule.cron!r}: {exc}") from None


def next_tick(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (UTC), or None if the cron never fires."""
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return fire.astimezone(UTC) if fire is not None else None


def last_tick(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest fire time at or before ``now`` (UTC), or None if there was none in the
    last eight years. Pure: every replica computes the same tick for the same schedule."""
    for back in _LOOKBACK:
        fire = trigger.get_next_fire_time(None, now - back)
        if fire is None or fire > now:
            continue
        tick = fire.astimezone(UTC)
        while (following := next_tick(trigger, tick)) is not None and following <= now:
            tick = following
        return tick
    return None


def tick_label(tick: datetime) -> str:
    """A tick as it appears in workflow ids: UTC, to the second (``2026-11-25T02:00:00Z``)."""
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_audience(schedule: Schedule) -> Audience:
    """The audience a schedule sweeps, as far as it is known without a database: a shipped
    audience by id, or a rule written inline (a saved audience's name needs
    :func:`audiences.swept.swept_audience`).

    Raises:
        UnknownAudience: the name is not a shipped audience's.
        audiences.rules.AudienceError: the inline rule is unusable (the path names where).
    """
    if isinstance(schedule.audience, str):
        shipped = shipped_audiences()
        if schedule.audience not in shipped:
            raise UnknownAudience(schedule.audience)
        return shipped[schedule.audience]
    return audience_from_data(schedule.audience, source=AUDIENCE_FIELD)
