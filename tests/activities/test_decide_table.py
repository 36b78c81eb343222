"""The delivery policy as a table: one row per rule and per interaction of two rules, each
a snapshot of what the database said and the decision it gets. No database: ``decide`` is
a pure function.

The first rule that applies wins, in this order: given up by the run, pause-all, journey
paused, unknown user, holdout, unsubscribed, unreachable, coupon expired; then, for
marketing only, quiet hours and frequency caps. A journey's ``fallback`` channel is tried
by its run when the answer is ``skipped``/``unreachable``, so the rows with two reasons
also say when the fallback is tried.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from activities.policy import (
    PAUSED_RECHECK,
    Decision,
    DeliveryRules,
    FrequencyCap,
    QuietHours,
    Snapshot,
    decide,
)
from store.ledger import RecentSend
from store.program import in_global_control

DAY = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NIGHT = datetime(2026, 6, 18, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
MORNING = datetime(2026, 6, 19, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai, after NIGHT
SMS_DAILY = FrequencyCap(1, timedelta(days=1), "sms")
WEEKLY = FrequencyCap(3, timedelta(days=7))
RULES = DeliveryRules(quiet_hours=QuietHours.parse("21:00-08:00"), caps=(SMS_DAILY, WEEKLY))

# A marketing SMS to a known, subscribed, reachable user by day, with nothing sent lately.
PLAIN = Snapshot(now=DAY, topic="marketing", channel="sms", timezone="Asia/Shanghai")
AT_NIGHT = replace(PLAIN, now=NIGHT)
# An SMS three hours ago: the daily SMS cap is reached until it is a day old.
SMS_EARLIER = (RecentSend("sms", DAY - timedelta(hours=3)),)
OVER_CAP = replace(PLAIN, recent=SMS_EARLIER)
THREE_PUSHES = tuple(RecentSend("push", DAY - timedelta(days=d)) for d in (1, 2, 3))


def skipped(reason: str) -> Decision:
    return Decision("skipped", reason)


def deferred(reason: str, until: datetime) -> Decision:
    return Decision("deferred", reason, until)


READY = Decision("ready")
PAUSED = deferred("paused_all", DAY + PAUSED_RECHECK)

CASES: dict[str, tuple[Snapshot, Decision]] = {
    # One rule at a time.
    "nothing stands in the way": (PLAIN, READY),
    "given up by its run": (replace(PLAIN, abandon="goal_reached"), skipped("goal_reached")),
    "operator paused all sends": (replace(PLAIN, paused_all=True), PAUSED),
    "journey paused": (
        replace(PLAIN, journey_paused=True),
        deferred("journey_paused", DAY + PAUSED_RECHECK),
    ),
    "user unknown (erased)": (replace(PLAIN, user_known=False), skipped("unknown_user")),
    "holdout group": (replace(PLAIN, group="holdout"), skipped("held_out")),
    "unsubscribed": (replace(PLAIN, unsubscribed=True), skipped("unsubscribed")),
    "no address on the channel": (replace(PLAIN, reachable=False), skipped("unreachable")),
    "coupon expired": (
        replace(PLAIN, coupon_expires_at=DAY - timedelta(hours=1)),
        skipped("coupon_expired"),
    ),
    "coupon expiring this instant": (
        replace(PLAIN, coupon_expires_at=DAY),
        skipped("coupon_expired"),
    ),
    "coupon still valid": (replace(PLAIN, coupon_expires_at=DAY + timedelta(days=1)), READY),
    "quiet hours": (AT_NIGHT, deferred("quiet_hours", MORNING)),
    "daily SMS cap reached": (OVER_CAP, skipped("frequency_cap")),
    "daily SMS cap reached, journey defers": (
        replace(OVER_CAP, on_frequency_cap="defer"),
        # Room again when the earlier SMS is a day old.
        deferred("frequency_cap", DAY - timedelta(hours=3) + timedelta(days=1)),
    ),
    "the daily SMS cap leaves room for a push": (replace(OVER_CAP, channel="push"), READY),
    "weekly cap holds a push too": (
        replace(PLAIN, channel="push", recent=THREE_PUSHES),
        skipped("frequency_cap"),
    ),
    "weekly cap counts every channel": (
        replace(PLAIN, recent=THREE_PUSHES),
        skipped("frequency_cap"),
    ),
    "weekly cap, journey defers": (
        replace(PLAIN, recent=THREE_PUSHES, on_frequency_cap="defer"),
        # The third newest send makes the count: room again a week after it.
        deferred("frequency_cap", DAY - timedelta(days=3) + timedelta(days=7)),
    ),
    "sends older than the window do not count": (
        replace(PLAIN, recent=(RecentSend("sms", DAY - timedelta(days=1, seconds=1)),)),
        READY,
    ),
    # Quiet hours: whose window, in whose zone.
    "journey turns quiet hours off": (replace(AT_NIGHT, quiet_hours="off"), READY),
    "journey's narrower window": (replace(AT_NIGHT, quiet_hours="23:30-07:00"), READY),
    "journey's own window, by day": (
        replace(PLAIN, quiet_hours="09:00-23:00"),
        deferred("quiet_hours", datetime(2026, 6, 18, 15, 0, tzinfo=UTC)),
    ),
    "user's zone is daytime": (replace(AT_NIGHT, timezone="America/New_York"), READY),
    "unknown zone: the default zone": (
        replace(AT_NIGHT, timezone="Mars/Olympus_Mons"),
        deferred("quiet_hours", MORNING),
    ),
    "no zone on the profile: the default zone": (
        replace(AT_NIGHT, timezone=None),
        deferred("quiet_hours", MORNING),
    ),
    # Transactional sends: no quiet hours, no caps, the rest applies.
    "transactional at night": (replace(AT_NIGHT, topic="transactional"), READY),
    "transactional over the cap": (replace(OVER_CAP, topic="transactional"), READY),
    "transactional, unsubscribed": (
        replace(PLAIN, topic="transactional", unsubscribed=True),
        skipped("unsubscribed"),
    ),
    # Two rules at once: which wins.
    "given up while paused": (
        replace(PLAIN, abandon="exited", paused_all=True),
        skipped("exited"),
    ),
    "paused all and journey paused": (replace(PLAIN, paused_all=True, journey_paused=True), PAUSED),
    "paused, user unknown": (replace(PLAIN, paused_all=True, user_known=False), PAUSED),
    "journey paused, unsubscribed": (
        replace(PLAIN, journey_paused=True, unsubscribed=True),
        deferred("journey_paused", DAY + PAUSED_RECHECK),
    ),
    "holdout and unsubscribed": (
        replace(PLAIN, group="holdout", unsubscribed=True),
        skipped("held_out"),
    ),
    "holdout and unreachable (no fallback)": (
        replace(PLAIN, group="holdout", reachable=False),
        skipped("held_out"),
    ),
    "unsubscribed and in quiet hours": (
        replace(AT_NIGHT, unsubscribed=True),
        skipped("unsubscribed"),
    ),
    "unsubscribed and unreachable (no fallback)": (
        replace(PLAIN, unsubscribed=True, reachable=False),
        skipped("unsubscribed"),
    ),
    "unreachable in quiet hours (the fallback is tried)": (
        replace(AT_NIGHT, reachable=False),
        skipped("unreachable"),
    ),
    "unreachable over the cap (the fallback is tried)": (
        replace(OVER_CAP, reachable=False),
        skipped("unreachable"),
    ),
    "unreachable with an expired coupon (the fallback is tried)": (
        replace(PLAIN, reachable=False, coupon_expires_at=DAY),
        skipped("unreachable"),
    ),
    "coupon expired in quiet hours": (
        replace(AT_NIGHT, coupon_expires_at=NIGHT),
        skipped("coupon_expired"),
    ),
    "quiet hours and over the cap": (
        replace(OVER_CAP, now=NIGHT, recent=(RecentSend("sms", NIGHT - timedelta(hours=3)),)),
        deferred("quiet_hours", MORNING),
    ),
    "quiet hours off, over the cap": (
        replace(OVER_CAP, quiet_hours="off"),
        skipped("frequency_cap"),
    ),
}


@pytest.mark.parametrize(("snapshot", "expected"), CASES.values(), ids=CASES.keys())
def test_decide(snapshot: Snapshot, expected: Decision) -> None:
    assert decide(snapshot, RULES) == expected


def test_no_rules_no_quiet_hours_and_no_caps() -> None:
    assert decide(replace(OVER_CAP, now=NIGHT), DeliveryRules()) == READY


GC_RULES = replace(RULES, global_control_percent=50, global_control_salt="table")
IDS = [f"user-{i}" for i in range(40)]
CONTROL = next(u for u in IDS if in_global_control(u, percent=50, salt="table"))
EXPOSED = next(u for u in IDS if not in_global_control(u, percent=50, salt="table"))

GLOBAL_CONTROL_CASES: dict[str, tuple[Snapshot, Decision]] = {
    "in the global control: no marketing": (
        replace(PLAIN, user_id=CONTROL),
        skipped("global_control"),
    ),
    "in the global control: transactional still goes": (
        replace(PLAIN, user_id=CONTROL, topic="transactional"),
        READY,
    ),
    "outside the global control": (replace(PLAIN, user_id=EXPOSED), READY),
    "global control and a journey's holdout": (
        replace(PLAIN, user_id=CONTROL, group="holdout"),
        skipped("held_out"),
    ),
    "global control and unsubscribed": (
        replace(PLAIN, user_id=CONTROL, unsubscribed=True),
        skipped("global_control"),
    ),
    "global control while paused": (replace(PLAIN, user_id=CONTROL, paused_all=True), PAUSED),
}


@pytest.mark.parametrize(
    ("snapshot", "expected"), GLOBAL_CONTROL_CASES.values(), ids=GLOBAL_CONTROL_CASES.keys()
)
def test_decide_with_a_global_control_group(snapshot: Snapshot, expected: Decision) -> None:
    assert decide(snapshot, GC_RULES) == expected
    # With no global control group configured, nobody is in it.
    assert decide(snapshot, RULES).reason != "global_control"
