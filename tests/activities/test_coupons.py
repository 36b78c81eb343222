"""Issuing a coupon is keyed: an activity retried after it committed hands back the coupon
it issued, announces its ``coupon_issued`` event only while nobody routed it, and writes
nothing twice (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Database
from sqlalchemy import func, select, update

from activities.coupons import CouponActivities
from journey_support import add_user
from store.models import Coupon, Event
from workflows.journey_contracts import IssueCouponInput

T0 = datetime(2026, 6, 18, 10, 0, tzinfo=UTC)


def issue(key: str = "run-1/coupon/1") -> IssueCouponInput:
    return IssueCouponInput(
        issue_key=key,
        user_id="u1",
        journey_id="new_user_coupon",
        amount_fen=2000,
        min_spend_fen=5000,
        valid_for=timedelta(days=7),
        now=T0,
    )


def test_a_retried_issue_hands_back_the_same_coupon_and_writes_nothing_twice(
    db: Database,
) -> None:
    add_user(db.factory, "u1", T0)
    announced: list[int] = []
    coupons = CouponActivities(db.factory, announce=announced.append)

    first = coupons.issue_coupon(issue())
    again = coupons.issue_coupon(issue())

    assert again == first
    assert (first.amount_fen, first.min_spend_fen) == (2000, 5000)
    assert first.expires_at == T0 + timedelta(days=7)
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(Coupon)) == 1
        [event] = session.scalars(select(Event)).all()
    assert event.event == "coupon_issued" and event.user_id == "u1"
    assert event.properties["coupon_code"] == first.code
    # Not routed yet: the retry hands the same event to the router again (routing is keyed).
    assert announced == [event.id, event.id]

    with db.factory.begin() as session:
        session.execute(update(Event).values(routed_at=T0))
    coupons.issue_coupon(issue())
    assert announced == [event.id, event.id]  # routed: nothing more to announce


def test_each_issue_key_gets_its_own_coupon_and_code(db: Database) -> None:
    add_user(db.factory, "u1", T0)
    coupons = CouponActivities(db.factory)

    a = coupons.issue_coupon(issue("run-1/coupon/1"))
    b = coupons.issue_coupon(issue("run-1/coupon/2"))

    assert a.coupon_id != b.coupon_id and a.code != b.code
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 2
