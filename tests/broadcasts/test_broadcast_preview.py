"""The preview before a broadcast is scheduled: its members at the send time, counted by what
the delivery policy decides for each (unsubscribed, unreachable, capped, held out, in the
global control group, held by quiet hours in their own zone, ready), equal to the policy
asked one member at a time; the send duration at the rate; a sample for large audiences;
nothing written."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from broadcast_support import TEMPLATE, add_members, audience_file, worker_settings
from sqlalchemy import func, select

from activities.policy import DeliveryRules, decide
from activities.policy_reads import PolicyReads
from enrollment.entries import holdout_group
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.models import Consent, Message
from store.program import in_global_control
from triggers.broadcast_preview import (
    PREVIEW_SALT,
    local_instant,
    preview,
)
from triggers.broadcast_preview import _order as preview_order
from triggers.broadcasts import BroadcastPlan, plan_broadcast
from worker import build_delivery

NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)
NIGHT_IN_SHANGHAI = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)  # 22:00 there, 10:00 in New York
DAY_IN_SHANGHAI = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 there, 00:00 in New York
SETTINGS = worker_settings(quiet_hours="21:00-08:00", cap_sms_per_day=1)


def population(db) -> list[str]:
    """Twelve members of tier ``pv``: six plain (Shanghai), two unsubscribed from SMS
    marketing, one with no phone, one sent a marketing SMS an hour ago (capped at one a
    day), two in New York."""
    ids = add_members(db.factory, "pv", 10, NOW)
    add_members(db.factory, "pv", 1, NOW, id="pv-ny-1", timezone="America/New_York")
    add_members(db.factory, "pv", 1, NOW, id="pv-ny-2", timezone="America/New_York")
    add_members(db.factory, "pv", 1, NOW, id="pv-nophone", phone=None)
    with transaction(db.factory) as session:
        for user_id in ids[:2]:
            session.add(
                Consent(
                    user_id=user_id,
                    channel="sms",
                    topic="marketing",
                    status="unsubscribed",
                    updated_at=NOW,
                )
            )
        session.add(
            Message(
                idempotency_key="earlier",
                user_id=ids[2],
                channel="sms",
                template=TEMPLATE,
                topic="marketing",
                status="sent",
                created_at=NIGHT_IN_SHANGHAI - timedelta(hours=1),
                sent_at=NIGHT_IN_SHANGHAI - timedelta(hours=1),
            )
        )
    return [*ids, "pv-ny-1", "pv-ny-2", "pv-nophone"]


def plan(tmp_path, *, holdout: str | None = None, rate: str | None = "2/s") -> BroadcastPlan:
    return plan_broadcast(
        TemplateRenderer(),
        audience=str(audience_file(tmp_path, "pv")),
        template=TEMPLATE,
        channel="sms",
        at=None,
        rate=rate,
        name=None,
        topic="marketing",
        now=NOW,
        holdout=holdout,
    )


def one_by_one(db, checked: BroadcastPlan, members: list[str], at: datetime, rules) -> Counter:
    """What the policy decides for each member, asked alone (:class:`PolicyReads`)."""
    decided: Counter = Counter()
    with db.factory() as session:
        reads = PolicyReads(session, rules)
        for user_id in members:
            if checked.holdout and holdout_group(PREVIEW_SALT, user_id, checked.holdout) == (
                "holdout"
            ):
                decided["skipped", "held_out"] += 1
                continue
            order = preview_order(checked, user_id, at)
            decision = decide(reads.snapshot(order, Message()), rules)
            decided[decision.verdict, decision.reason] += 1
        session.rollback()
    return decided


def as_counter(shown) -> Counter:
    found: Counter = Counter({("ready", None): shown.ready} if shown.ready else {})
    found.update({("skipped", r): n for r, n in shown.skipped.items()})
    found.update({("deferred", r): n for r, n in shown.deferred.items()})
    return found


def test_night_in_shanghai_holds_shanghai_and_sends_new_york(db, tmp_path):
    members = population(db)
    checked = plan(tmp_path)
    rules = DeliveryRules.from_settings(SETTINGS)
    shown = preview(db.factory, checked, at=NIGHT_IN_SHANGHAI, rules=rules)
    assert (shown.members, shown.asked, shown.sampled) == (13, 13, False)
    assert shown.skipped == {"unsubscribed": 2, "unreachable": 1}
    # Quiet hours come before the caps: the capped Shanghai member is held, not skipped.
    assert shown.deferred == {"quiet_hours": 8}
    assert shown.ready == 2  # New York, 10:00
    assert shown.duration == timedelta(seconds=1)  # 2 ready at 2/s
    assert as_counter(shown) == one_by_one(db, checked, members, NIGHT_IN_SHANGHAI, rules)


def test_daytime_in_shanghai_caps_and_holds_new_york(db, tmp_path):
    members = population(db)
    checked = plan(tmp_path)
    rules = DeliveryRules.from_settings(SETTINGS)
    at = DAY_IN_SHANGHAI
    with transaction(db.factory) as session:  # the earlier send: an hour before this time
        row = session.scalars(select(Message)).one()
        row.sent_at = at - timedelta(hours=1)
    shown = preview(db.factory, checked, at=at, rules=rules)
    assert shown.skipped == {"unsubscribed": 2, "unreachable": 1, "frequency_cap": 1}
    assert shown.deferred == {"quiet_hours": 2}  # midnight in New York
    assert shown.ready == 7
    assert as_counter(shown) == one_by_one(db, checked, members, at, rules)


def test_holdout_and_global_control_as_the_policy_draws_them(db, tmp_path):
    members = population(db)
    checked = plan(tmp_path, holdout="50")
    rules = replace(
        DeliveryRules.from_settings(SETTINGS.model_copy(update={"quiet_hours": None})),
        global_control_percent=20,
        global_control_salt="preview-test",
    )
    shown = preview(db.factory, checked, at=DAY_IN_SHANGHAI, rules=rules)
    held = [u for u in members if holdout_group(PREVIEW_SALT, u, 50) == "holdout"]
    control = [
        u
        for u in members
        if u not in held and in_global_control(u, percent=20, salt="preview-test")
    ]
    assert held and shown.skipped.get("held_out") == len(held)
    assert shown.skipped.get("global_control", 0) == len(control)
    assert as_counter(shown) == one_by_one(db, checked, members, DAY_IN_SHANGHAI, rules)


def test_a_large_audience_is_sampled_and_scaled_and_nothing_is_written(db, tmp_path):
    add_members(db.factory, "pv", 300, NOW)
    checked = plan(tmp_path, rate="100/s")
    rules = DeliveryRules.from_settings(SETTINGS)
    shown = preview(db.factory, checked, at=DAY_IN_SHANGHAI, rules=rules, sample=50)
    assert (shown.members, shown.asked, shown.sampled) == (300, 50, True)
    assert shown.ready == 50 and shown.estimate_ready == 300
    assert shown.duration == timedelta(seconds=3)
    # The channel's broadcast rate, when slower, sets the duration.
    slower = preview(db.factory, checked, at=DAY_IN_SHANGHAI, rules=rules, channel_rate=10)
    assert slower.duration == timedelta(seconds=30)
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_rules_are_the_workers(db):
    assert DeliveryRules.from_settings(SETTINGS) == build_delivery(SETTINGS, db.factory).rules


def test_local_instant_in_a_chosen_zone():
    assert local_instant("2026-06-15T20:00", "Asia/Shanghai") == "2026-06-15T20:00:00+08:00"
    assert local_instant("2026-06-15T20:00", "America/New_York") == "2026-06-15T20:00:00-04:00"
    assert local_instant(" ", "Asia/Shanghai") == ""
