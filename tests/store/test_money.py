"""Money per journey on SQLite and PostgreSQL: orders, GMV, coupon and message cost, and
the differences against the holdout, on a fixed population whose answers are worked out by
hand below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Database

from journeys.validate import load_journey, shipped_journey_files
from store import stats
from store.db import transaction
from store.journeys import publish
from store.models import Coupon, Enrollment, Event, Message, OutboxMessage, User
from store.money import Costs, money_report
from store.reports import journey_report

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
COSTS = Costs(
    sms_segment_fen=5, email_fen=2, push_fen=1, margin_rate=0.3,
    sms_segment_fen_by_country={"+1": 60},
)  # fmt: skip
TREATMENT = [f"t{i}" for i in range(6)]
HOLDOUT = [f"h{i}" for i in range(4)]
# 80 Chinese characters: UCS-2, two segments (70 fit in one).
LONG_SMS = "新人专享满五十减二十优惠券已到账" * 5


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def order(user_id: str, key: str, at: datetime, **properties: Any) -> Event:
    return Event(
        message_id=key,
        type="track",
        user_id=user_id,
        event="order_placed",
        properties={"order_id": key} | properties,
        context={},
        timestamp=at,
        received_at=at,
    )


def ledger(user_id: str, enrollment_id: int, step: str, channel: str, status: str) -> Message:
    return Message(
        idempotency_key=f"{user_id}/{step}",
        enrollment_id=enrollment_id,
        journey_id="new_user_coupon",
        step_id=step,
        user_id=user_id,
        channel=channel,
        template=step,
        status=status,
        reason="held_out" if status == "skipped" else None,
        created_at=T0,
    )


def seed(db: Database) -> None:
    """Six treated and four held out of new_user_coupon (7-day window, 10% holdout).

    Orders in the window: t0 two (¥80 paid with its ¥20 journey coupon, then ¥50), t1 one of
    ¥300 (sent in yuan only); h0 one of ¥60 with a coupon the engine never issued. Not in
    it: t2's order on day 8, h1's the day before entering, t3's order that started its run.
    """
    path = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon")
    with transaction(db.factory) as session:
        publish(session, journey=load_journey(path), source=path.read_text(), now=T0)
        for uid in TREATMENT + HOLDOUT:
            phone = "+14155550100" if uid == "t4" else "+8613800138000"
            session.add(User(id=uid, phone=phone, traits={}, tags=[], created_at=T0, updated_at=T0))
        session.flush()
        ids: dict[str, int] = {}
        for uid in TREATMENT + HOLDOUT:
            converted = day(1) if uid in ("t0", "t1", "h0") else None
            row = Enrollment(
                journey_id="new_user_coupon",
                journey_version=1,
                user_id=uid,
                group="treatment" if uid.startswith("t") else "holdout",
                workflow_id=f"journey:new_user_coupon:{uid}",
                trigger_message_id=f"{uid}-trigger",
                entered_at=T0,
                converted_at=converted,
            )
            session.add(row)
            session.flush()
            ids[uid] = row.id
            session.add(
                Coupon(
                    issue_key=f"{uid}/welcome_coupon",
                    code=f"NEW-{uid}",
                    user_id=uid,
                    journey_id="new_user_coupon",
                    amount_fen=2000,
                    min_spend_fen=5000,
                    issued_at=T0 + timedelta(seconds=1),
                    expires_at=day(7),
                    redeemed_at=day(1) if uid == "t0" else None,
                )
            )
        session.add_all(
            [
                order("t0", "o1", day(1), total_fen=8000, coupon_code="NEW-t0"),
                order("t0", "o2", day(3), total_fen=5000),
                order("t1", "o3", day(2), total=300),
                order("t2", "o4", day(8), total_fen=9900),
                order("t3", "t3-trigger", T0, total_fen=7700),
                order("h0", "o5", day(1), total_fen=6000, coupon_code="CAMP-1"),
                order("h1", "o6", day(-1), total_fen=4000),
            ]
        )
        for uid in TREATMENT:
            status = "skipped" if uid == "t5" else "delivered"
            session.add(ledger(uid, ids[uid], "welcome_sms", "sms", status))
            session.add(ledger(uid, ids[uid], "day2_push", "push", "sent"))
        session.add(ledger("t1", ids["t1"], "day6_email", "email", "bounced"))
        session.add(ledger("t2", ids["t2"], "day6_email", "email", "failed"))
        for uid in HOLDOUT:
            session.add(ledger(uid, ids[uid], "welcome_sms", "sms", "skipped"))
        session.add(
            OutboxMessage(
                message_key="t0/welcome_sms", channel="sms", recipient="+8613800138000",
                body=LONG_SMS, data={}, created_at=T0,
            )
        )  # fmt: skip


def test_money_per_entrant_against_the_holdout(db: Database) -> None:
    seed(db)
    with db.factory() as session:
        report = money_report(session, journey_id="new_user_coupon", costs=COSTS)
    money = report.journey
    assert report.window == "7d"
    t, h = money.treatment, money.holdout
    assert (t.entrants, t.converted, t.orders, t.gmv_fen) == (6, 2, 3, 10000 + 5000 + 30000)
    assert (h.entrants, h.converted, h.orders, h.gmv_fen) == (4, 1, 1, 6000)
    assert (t.coupon_fen, h.coupon_fen) == (2000, 0)
    # SMS: t0 2 segments at 5, t1-t3 one at 5, t4 one at the +1 price 60; t5's skipped.
    # Push 6 at 1; email: t1's bounce is billed (2), t2's failure is not. Holdout: none.
    assert t.message_fen == pytest.approx(2 * 5 + 3 * 5 + 60 + 6 * 1 + 2)
    assert h.message_fen == 0
    spend = 2000 + 93
    assert money.spend_fen == pytest.approx(spend)

    # Per entrant: GMV 7500 against 1500, orders 0.5 against 0.25.
    assert money.gmv_per_entrant_fen.value == pytest.approx(6000)
    assert money.incremental_gmv_fen.value == pytest.approx(6 * 6000)
    assert money.incremental_margin_fen.value == pytest.approx(0.3 * 36000)
    assert money.incremental_orders.value == pytest.approx(6 * 0.25)
    assert money.cost_per_incremental_order_fen.value == pytest.approx(spend / 1.5)
    assert money.roi.value == pytest.approx((10800 - spend) / spend)

    # The intervals: the bootstrap of the per-entrant GMV, carried through to ROI.
    gmv = stats.bootstrap_difference([15000, 30000, 0, 0, 0, 0], [6000, 0, 0, 0])
    assert (money.gmv_per_entrant_fen.low, money.gmv_per_entrant_fen.high) == gmv
    low, high = (0.3 * 6 * g for g in gmv)
    assert money.roi.low == pytest.approx((low - spend) / spend)
    assert money.roi.high == pytest.approx((high - spend) / spend)
    assert money.conversion.value == pytest.approx(2 / 6 - 1 / 4)
    newcombe = stats.newcombe(2, 6, 1, 4)
    assert (money.conversion.low, money.conversion.high) == pytest.approx(newcombe)
    assert money.roi.significant is False


def test_not_significant_says_how_many_more_entrants_would_tell(db: Database) -> None:
    power = pytest.importorskip("statsmodels.stats.power")
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    seed(db)
    with db.factory() as session:
        money = money_report(session, journey_id="new_user_coupon", costs=COSTS).journey
    # statsmodels: treated entrants needed at 80% power, the holdout 4/6 of them.
    needed = power.NormalIndPower().solve_power(
        effect_size=proportion.proportion_effectsize(2 / 6, 1 / 4),
        alpha=0.05,
        power=0.8,
        ratio=4 / 6,
    )
    more_t, more_h = round(needed - 6 + 0.5), round(needed * 4 / 6 - 4 + 0.5)
    assert money.conversion.more_treatment == pytest.approx(more_t, abs=1)
    assert money.conversion.more_holdout == pytest.approx(more_h, abs=1)
    note = money.conversion.note()
    assert note.startswith("not significant yet; about ")
    assert f"({money.conversion.more_holdout:,} of them held out)" in note


def test_the_split_is_checked_against_the_configured_holdout(db: Database) -> None:
    seed(db)
    with db.factory() as session:
        ratio = money_report(session, journey_id="new_user_coupon", costs=COSTS).sample_ratio
    # 4 of 10 users held out where 10% was configured: chi2 = 3^2/9 + 3^2/1 = 10,
    # p = 0.0016: unlikely, not yet beyond 0.001.
    assert ratio is not None
    assert (ratio.holdout, ratio.total, ratio.expected_share) == (4, 10, 0.1)
    assert ratio.chi2 == pytest.approx(10.0)
    assert ratio.p_value == pytest.approx(0.001565, abs=1e-6)
    assert not ratio.mismatch
    with transaction(db.factory) as session:
        for i in range(10):
            session.add(
                Enrollment(
                    journey_id="new_user_coupon", journey_version=1, user_id=f"x{i}",
                    group="holdout", workflow_id=f"x{i}", entered_at=T0,
                )
            )  # fmt: skip
    with db.factory() as session:
        ratio = money_report(session, journey_id="new_user_coupon", costs=COSTS).sample_ratio
    assert ratio is not None and ratio.mismatch


def test_money_per_send_step(db: Database) -> None:
    seed(db)
    with db.factory() as session:
        steps = money_report(session, journey_id="new_user_coupon", costs=COSTS).steps
    by_label = {s.label: s for s in steps}
    assert sorted(by_label) == ["day2_push", "day6_email", "welcome_sms"]
    sms = by_label["welcome_sms"]
    assert (sms.treatment.entrants, sms.holdout.entrants) == (6, 4)
    assert sms.spend_fen == pytest.approx(2 * 5 + 3 * 5 + 60)  # this step's messages only
    email = by_label["day6_email"]
    assert (email.treatment.entrants, email.holdout.entrants) == (2, 0)
    # Held-out runs never reach it (their first step recorded no send): nothing to compare.
    assert email.conversion.value is None and email.roi.value is None
    assert email.roi.note() == "no holdout to compare with"


def test_journey_report_carries_the_money_when_priced(db: Database) -> None:
    seed(db)
    with db.factory() as session:
        plain = journey_report(session, journey_id="new_user_coupon")
        priced = journey_report(session, journey_id="new_user_coupon", costs=COSTS)
    assert plain.money is None
    assert priced.money is not None and priced.money.journey.treatment.orders == 3
    data: Any = priced.as_dict()
    assert data["money"]["journey"]["roi"]["significant"] is False
    assert data["money"]["sample_ratio"]["mismatch"] is False
