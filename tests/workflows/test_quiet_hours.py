"""Quiet hours: marketing sends wait for the morning in the user's timezone, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.policy import QuietHours
from activities.profiles import next_local_time
from config import Settings
from journey_support import (
    add_user,
    ledger,
    publish_shipped,
    router_for,
    settled,
    store_event,
    user_in,
)
from store.db import transaction
from store.models import Consent
from support import assert_eventually_async
from worker import running_worker
from workflows.ids import journey_workflow_id

NIGHT = QuietHours.parse("21:00-08:00")


def test_quiet_window_crosses_midnight():
    at = datetime(2026, 6, 18, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    assert NIGHT.defer_until(at, "Asia/Shanghai") == datetime(2026, 6, 19, 0, 0, tzinfo=UTC)
    assert NIGHT.defer_until(at, "Europe/London") is None  # 15:30 there


def test_spring_forward_night_ends_at_local_eight():
    # New York, night of 13→14 March 2027: clocks jump 02:00 → 03:00. 23:00 EST is 04:00Z;
    # 08:00 EDT the next morning is 12:00Z (not 13:00Z, as adding 9 hours would give).
    at = datetime(2027, 3, 14, 4, 0, tzinfo=UTC)
    assert NIGHT.defer_until(at, "America/New_York") == datetime(2027, 3, 14, 12, 0, tzinfo=UTC)


def test_fall_back_night_ends_at_local_eight():
    # 6→7 November 2027: 01:00–02:00 happens twice. 22:00 EDT is 02:00Z; 08:00 EST is 13:00Z.
    at = datetime(2027, 11, 7, 2, 0, tzinfo=UTC)
    assert NIGHT.defer_until(at, "America/New_York") == datetime(2027, 11, 7, 13, 0, tzinfo=UTC)


def test_next_local_time_skips_a_wall_time_that_does_not_exist():
    # 02:30 does not exist in New York on 14 March 2027: the next real instant after the gap.
    at = datetime(2027, 3, 14, 5, 0, tzinfo=UTC)  # 00:00 EST
    assert next_local_time(at, "02:30", "America/New_York") == datetime(
        2027, 3, 14, 7, 30, tzinfo=UTC
    )


def next_spring_forward_eve(after: datetime) -> datetime:
    """23:00 New York time on the eve of the next US spring-forward (second Sunday of March)."""
    from datetime import date

    for year in (after.year, after.year + 1, after.year + 2):
        first = date(year, 3, 1)
        second_sunday = first + timedelta(days=(6 - first.weekday()) % 7 + 7)
        eve = datetime(second_sunday.year, 3, second_sunday.day, 4, 0, tzinfo=UTC)  # 23:00 EST
        if eve > after + timedelta(hours=1):
            return eve
    raise AssertionError("no spring-forward ahead")


async def signup_at_night(
    env, db, task_queue: str, user: str, *, zone: str, at, overnight=None
) -> datetime:
    """Quiet hours on; the user signs up at ``at(now)`` (an instant at night in ``zone``);
    ``overnight()`` runs while the welcome SMS is held; then morning comes and the run ends.
    Returns the signup instant."""
    settings = Settings(environment="development", quiet_hours="21:00-08:00")
    router = router_for(env, db, task_queue)
    async with running_worker(env.client, settings, db.factory, task_queue=task_queue):
        start = await env.get_current_time()
        await env.sleep(at(start) - start)
        t0 = await env.get_current_time()
        publish_shipped(db.factory, "new_user_coupon", t0)
        add_user(db.factory, user, t0, timezone=zone)
        await router.route([store_event(db.factory, user, "user_signed_up", t0)])
        handle = env.client.get_workflow_handle(journey_workflow_id("new_user_coupon", user))
        try:
            # Time stands still here: the test server skips only while someone sleeps or
            # waits on a result, so the welcome SMS can only be held, never yet sent.
            await assert_eventually_async(lambda: held_overnight(db, user), timeout=30)
            if overnight is not None:
                overnight(t0)
            await env.sleep(timedelta(hours=12))
            await settled(db, user, 1)
            # Let the run finish while its worker is up (no orphaned timers on the test server).
            await env.sleep(timedelta(days=8))
            await handle.result()
        except BaseException:
            # A run left behind with its timers would stall the next test's time skipping.
            await handle.terminate("test failed")
            raise
    return t0


def held_overnight(db, user: str) -> bool:
    rows = ledger(db.factory, user)
    assert rows and rows[0].status == "pending", f"the welcome SMS held overnight, ledger: {rows}"
    return True


async def test_signup_at_night_gets_its_sms_in_the_morning(time_env, sqlite_db, task_queue):
    user = user_in("treatment", f"night-{task_queue}")
    t0 = await signup_at_night(
        time_env,
        sqlite_db,
        task_queue,
        user,
        zone="Asia/Shanghai",
        at=lambda now: next_local_time(now, "22:30", "Asia/Shanghai"),
    )
    sms = ledger(sqlite_db.factory, user)[0]
    assert sms.status == "sent"
    morning = next_local_time(t0, "08:00", "Asia/Shanghai")
    assert morning <= sms.sent_at < morning + timedelta(seconds=5)


async def test_night_before_spring_forward_waits_for_eight_local(time_env, sqlite_db, task_queue):
    user = user_in("treatment", f"dst-{task_queue}")
    t0 = await signup_at_night(
        time_env, sqlite_db, task_queue, user, zone="America/New_York", at=next_spring_forward_eve
    )
    sms = ledger(sqlite_db.factory, user)[0]
    # 08:00 EDT is 12:00Z: nine hours after 23:00 EST on the wall clock, but eight of real
    # time, because the clock jumped from 02:00 to 03:00 overnight.
    morning = t0.replace(minute=0, second=0, microsecond=0) + timedelta(hours=8)
    assert sms.status == "sent"
    assert morning <= sms.sent_at < morning + timedelta(seconds=5), (t0, sms.sent_at)


async def test_stop_while_the_sms_waits_for_morning_means_no_sms(time_env, sqlite_db, task_queue):
    db = sqlite_db
    user = user_in("treatment", f"stop-{task_queue}")

    def reply_stop(t0: datetime) -> None:
        # The user replies STOP overnight (what the Twilio inbound webhook records).
        with transaction(db.factory) as session:
            session.add(
                Consent(
                    user_id=user,
                    channel="sms",
                    topic="marketing",
                    status="unsubscribed",
                    source="sms_keyword",
                    updated_at=t0,
                )
            )

    await signup_at_night(
        time_env,
        db,
        task_queue,
        user,
        zone="Asia/Shanghai",
        at=lambda now: next_local_time(now, "22:30", "Asia/Shanghai"),
        overnight=reply_stop,
    )
    sms = ledger(db.factory, user)[0]
    assert (sms.step_id, sms.status, sms.reason) == ("welcome_sms", "skipped", "unsubscribed")
