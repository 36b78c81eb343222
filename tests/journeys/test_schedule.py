"""The tick a sweep belongs to: the latest scheduled instant at or before now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeys.models import Schedule
from journeys.schedule import ScheduleError, cron_trigger, last_tick, next_tick, tick_label


def trigger(cron: str, timezone: str = "Asia/Shanghai"):
    return cron_trigger(Schedule(cron=cron, timezone=timezone, audience="dormant_30d"))


def test_daily_ten_oclock_shanghai_is_two_utc() -> None:
    daily = trigger("0 10 * * *")
    # 03:00 UTC = 11:00 Shanghai: today's 10:00 fired an hour ago.
    assert last_tick(daily, datetime(2026, 11, 25, 3, 0, tzinfo=UTC)) == datetime(
        2026, 11, 25, 2, 0, tzinfo=UTC
    )
    # 01:59:59 UTC = 09:59:59 Shanghai: still yesterday's tick.
    assert last_tick(daily, datetime(2026, 11, 25, 1, 59, 59, tzinfo=UTC)) == datetime(
        2026, 11, 24, 2, 0, tzinfo=UTC
    )


def test_the_fire_instant_itself_is_its_own_tick() -> None:
    daily = trigger("0 10 * * *")
    at = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert last_tick(daily, at) == at
    assert next_tick(daily, at) == at + timedelta(days=1)


def test_replicas_with_skewed_clocks_agree_on_the_tick() -> None:
    every_second = trigger("* * * * * *")
    fired = datetime(2026, 11, 25, 2, 0, 7, tzinfo=UTC)
    late = [fired + timedelta(milliseconds=ms) for ms in (0, 3, 250, 999)]
    assert {last_tick(every_second, t) for t in late} == {fired}


def test_cron_day_numbers_mean_what_cron_means() -> None:
    sundays = trigger("0 10 * * 0", "UTC")
    weekdays = trigger("0 10 * * 1-5", "UTC")
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert last_tick(sundays, wednesday) == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert last_tick(weekdays, wednesday) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert last_tick(trigger("0 10 * * 7", "UTC"), wednesday) == last_tick(sundays, wednesday)


def test_rare_schedules_look_far_enough_back() -> None:
    new_year = trigger("0 0 1 1 *", "UTC")
    assert last_tick(new_year, datetime(2026, 11, 25, tzinfo=UTC)) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    leap_day = trigger("0 0 29 2 *", "UTC")
    assert last_tick(leap_day, datetime(2026, 11, 25, tzinfo=UTC)) == datetime(
        2024, 2, 29, tzinfo=UTC
    )


def test_daylight_saving_keeps_local_time() -> None:
    nine_new_york = trigger("0 9 * * *", "America/New_York")
    # Before and after the March 2026 change: 14:00 UTC (EST), then 13:00 UTC (EDT).
    assert last_tick(nine_new_york, datetime(2026, 3, 7, 20, tzinfo=UTC)) == datetime(
        2026, 3, 7, 14, tzinfo=UTC
    )
    assert last_tick(nine_new_york, datetime(2026, 3, 9, 20, tzinfo=UTC)) == datetime(
        2026, 3, 9, 13, tzinfo=UTC
    )


def test_tick_label_is_utc_to_the_second() -> None:
    tick = datetime(2026, 11, 25, 10, 0, tzinfo=trigger("0 10 * * *").timezone)
    assert tick_label(tick) == "2026-11-25T02:00:00Z"


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("0 10 * *", "UTC", "needs 5 fields"),
        ("0 25 * * *", "UTC", "25"),
        ("0 10 * * 8", "UTC", "day of week 8"),
        ("0 10 * * *", "Mars/Olympus", "unknown timezone 'Mars/Olympus'"),
    ],
)
def test_bad_schedules_say_what_is_wrong(cron: str, timezone: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(")):
        trigger(cron, timezone)
