"""The synthetic population and its daily behaviour, without a server."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from simulate.behaviour import Behaviour, parse_behaviour
from simulate.population import act, make_population, plan_day

START = datetime(2026, 3, 2, tzinfo=UTC)


def test_a_seed_makes_the_same_population_and_another_seed_another():
    one = make_population(7, 200, Behaviour(), start=START, days=30)
    again = make_population(7, 200, Behaviour(), start=START, days=30)
    other = make_population(8, 200, Behaviour(), start=START, days=30)

    assert one == again
    assert [p.traits for p in one] != [p.traits for p in other]


def test_the_population_is_varied_as_the_model_says():
    people = make_population(1, 1000, Behaviour(), start=START, days=30)
    kinds = Counter(p.kind for p in people)

    assert 350 < kinds["new"] < 450 and 200 < kinds["dormant"] < 300
    assert all(START <= p.signup_at < START + timedelta(days=30) for p in people if p.signup_at)
    assert all(p.last_seen <= START - timedelta(days=20) for p in people if p.dormant)
    assert len({p.timezone for p in people}) >= 5
    assert 0 < sum("phone" not in p.traits for p in people) < 200
    assert 0 < sum("push_token" not in p.traits for p in people) < 400
    assert 0 < sum(p.traits["unsubscribed_sms"] for p in people) < 100


def test_a_message_lifts_the_chances_the_same_dice_are_rolled_against():
    model = parse_behaviour(
        "daily: {visit: 0, add_to_cart: 0, order: 0.05, coupon: 0}\nlift: {factor: 10, days: 2}"
    )
    people = make_population(3, 400, model, start=START, days=1)
    plans = [plan_day(3, p, 1, START + timedelta(days=1)) for p in people]

    def orders(lifted: bool) -> int:
        calls = [
            c
            for plan in plans
            for c in act(
                replace(plan, person=replace(plan.person)), model, lifted=lifted, journey_coupons=[]
            )
        ]
        return sum(c["event"] == "order_placed" for c in calls)

    assert 0 < orders(lifted=False) < orders(lifted=True) / 4


def test_an_order_uses_the_best_coupon_expiring_first():
    model = parse_behaviour(
        "daily: {visit: 0, add_to_cart: 0, order: 1, coupon: 0}\npopulation: {new: 0, dormant: 0}"
    )
    person = make_population(5, 1, model, start=START, days=1)[0]
    plan = replace(plan_day(5, person, 1, START + timedelta(days=1)), order_total=200)
    at = plan.at
    held = [
        ("SMALL", 1000, 0, at + timedelta(days=1)),
        ("LATE", 3000, 5000, at + timedelta(days=5)),
        ("SOON", 3000, 5000, at + timedelta(days=2)),
        ("TOO-DEAR", 9000, 50000, at + timedelta(days=2)),
        ("EXPIRED", 9000, 0, at - timedelta(hours=1)),
    ]

    calls = act(plan, model, lifted=False, journey_coupons=held)

    assert [c["event"] for c in calls] == ["session_started", "order_placed", "coupon_redeemed"]
    assert calls[1]["properties"]["coupon_code"] == calls[2]["properties"]["coupon_code"] == "SOON"
