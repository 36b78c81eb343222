"""Money per journey on SQLite and PostgreSQL: orders, GMV, coupon and message cost, and
the differences against the holdout, on a fixed population whose answers are worked out by
hand (tests/money_support.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import Database
from money_support import COSTS, T0, seed
from sqlalchemy import select

from store import stats
from store.db import transaction
from store.models import Enrollment, Message
from store.money import money_report
from store.reports import journey_report
from store.uplift import Entrant, compare
from workflows.ids import journey_workflow_id


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

    assert money.conversion.value == pytest.approx(2 / 6 - 1 / 4)
    newcombe = stats.newcombe(2, 6, 1, 4)
    assert (money.conversion.low, money.conversion.high) == pytest.approx(newcombe)
    # Two buyers treated, one held out: too few to resample, so no interval on money, and
    # ROI is not significant however large it looks.
    assert (money.gmv_per_entrant_fen.low, money.gmv_per_entrant_fen.high) == (None, None)
    assert money.roi.significant is False
    assert money.roi.note().startswith(
        "not significant yet (2 buyers treated, 1 held out: an interval needs 5 in each "
        "group); about "
    )


def _entrants(group: str, gmv: list[int]) -> list[Entrant]:
    return [Entrant(group, f"{group}{i}", bool(v), orders=int(bool(v)), gmv_fen=v)
            for i, v in enumerate(gmv)]  # fmt: skip


def test_money_intervals_are_the_bootstrap_carried_through_to_roi() -> None:
    treated = [0] * 18 + [8000, 12000, 5000, 30000, 9900, 15000] * 2
    held = [0] * 9 + [6000, 4000, 8000, 3000, 12000]
    entrants = _entrants("treatment", treated) + _entrants("holdout", held)
    entrants[-1].coupon_fen = 2000  # a holdout coupon: not the journey's spend
    entrants[0].message_fen = entrants[1].message_fen = 50.0
    money = compare("j", entrants, margin_rate=COSTS.margin_rate)
    spend = 100.0
    assert money.spend_fen == spend
    gmv = stats.bootstrap_difference(treated, held)
    assert (money.gmv_per_entrant_fen.low, money.gmv_per_entrant_fen.high) == gmv
    n = len(treated)
    assert (money.incremental_margin_fen.low, money.incremental_margin_fen.high) == (
        pytest.approx(0.3 * n * gmv[0]),
        pytest.approx(0.3 * n * gmv[1]),
    )
    assert money.roi.low == pytest.approx((0.3 * n * gmv[0] - spend) / spend)
    assert money.roi.high == pytest.approx((0.3 * n * gmv[1] - spend) / spend)
    orders = stats.bootstrap_difference(
        [int(bool(v)) for v in treated], [1 if v else 0 for v in held]
    )
    assert money.incremental_orders.low == pytest.approx(n * orders[0])
    # 12 of 30 against 5 of 14 ordered: +1.3 orders, perhaps none, so the cost per order
    # is unbounded above.
    assert money.incremental_orders.value == pytest.approx(n * (12 / 30 - 5 / 14))
    assert orders[0] < 0 and money.cost_per_incremental_order_fen.high is None
    assert money.cost_per_incremental_order_fen.low == pytest.approx(spend / (n * orders[1]))
    assert money.cost_per_incremental_order_fen.significant is False


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


def test_money_per_ab_variant(db: Database) -> None:
    seed(db)
    # The variant is chosen per user, held-out runs included (their ledger row keeps it).
    short = {"t0", "t1", "t2", "h0", "h1"}
    with transaction(db.factory) as session:
        for row in session.scalars(select(Message).where(Message.step_id == "welcome_sms")):
            row.variant = "short" if row.user_id in short else "long"
    with db.factory() as session:
        steps = money_report(session, journey_id="new_user_coupon", costs=COSTS).steps
    by_label = {s.label: s for s in steps}
    assert "welcome_sms" not in by_label
    a, b = by_label["welcome_sms · short"], by_label["welcome_sms · long"]
    # short: t0 (2 orders, ¥150), t1 (1, ¥300), t2 (none in the window) against h0 (1, ¥60)
    # and h1 (none); long: t3-t5 and h2-h3, nobody ordered.
    assert (a.treatment.entrants, a.holdout.entrants) == (3, 2)
    assert (a.treatment.orders, a.treatment.gmv_fen, a.holdout.gmv_fen) == (3, 45000, 6000)
    assert a.gmv_per_entrant_fen.value == pytest.approx(45000 / 3 - 6000 / 2)
    assert a.spend_fen == pytest.approx(2 * 5 + 5 + 5)  # t0's two segments, t1, t2
    assert (b.treatment.entrants, b.holdout.entrants, b.treatment.orders) == (3, 2, 0)
    assert b.spend_fen == pytest.approx(5 + 60)  # t3, t4 at the +1 price; t5 skipped


def test_an_order_counts_once_for_the_latest_entry_and_since_narrows(db: Database) -> None:
    seed(db)
    with transaction(db.factory) as session:
        # t0 enters again on day 2: its day-3 order (¥50) is the new entry's, not both.
        session.add(
            Enrollment(
                journey_id="new_user_coupon", journey_version=1, user_id="t0",
                entry_number=2, group="treatment",
                workflow_id=journey_workflow_id("new_user_coupon", "t0", entry=2),
                entered_at=T0 + timedelta(days=2),
            )
        )  # fmt: skip
    with db.factory() as session:
        everyone = money_report(session, journey_id="new_user_coupon", costs=COSTS).journey
        later = money_report(
            session, journey_id="new_user_coupon", costs=COSTS, since=T0 + timedelta(days=1)
        ).journey
    assert (everyone.treatment.entrants, everyone.treatment.orders) == (7, 3)
    assert everyone.treatment.gmv_fen == 45000
    # Since day 1: only the second entry, with its one order and no messages.
    assert (later.treatment.entrants, later.treatment.orders, later.treatment.gmv_fen) == (
        1,
        1,
        5000,
    )
    assert later.holdout.entrants == 0 and later.roi.value is None
