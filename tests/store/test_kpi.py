"""The growth KPIs on fixed data, each number worked out by hand from the events below, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from journey_support import add_user, store_event
from store import stats
from store.db import transaction
from store.kpi import DEFAULT_TARGETS, kpi_report
from store.models import Coupon

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int = 12, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def report(db, since: datetime, until: datetime, **kw: Any):
    with db.factory() as session:
        return kpi_report(session, since=since, until=until, **kw)


def shares(kpi) -> list[tuple[int | None, int]]:
    return [(p.x, p.n) for p in kpi.points]


def sign_up(db, user: str, at: datetime) -> None:
    store_event(db.factory, user, "user_signed_up", at)


def visit(db, user: str, at: datetime) -> None:
    store_event(db.factory, user, "session_started", at)


def order(db, user: str, at: datetime, **properties: Any) -> None:
    store_event(db.factory, user, "order_placed", at, properties={"order_id": "o"} | properties)


def test_order_conversion_is_buyers_among_the_weeks_visitors(db):
    # Week A: Mon 18 May - Mon 25 May (Shanghai); week B: 25 May - 1 June.
    for user in ("u1", "u1", "u2", "u3", "u4"):
        visit(db, user, local(5, 19))
    order(db, "u1", local(5, 20))
    order(db, "u5", local(5, 20))  # ordered without a visit that week: not a visitor
    visit(db, "u0", local(5, 17, 23, 30))  # the week before the window
    visit(db, "u1", local(5, 26))
    visit(db, "u2", local(5, 27))
    order(db, "u2", local(5, 28))
    # 25 May 01:00 in Shanghai is still 24 May in UTC: week B, as the time zone says.
    visit(db, "u6", local(5, 25, 1))
    store_event(db.factory, None, "session_started", local(5, 26))  # type: ignore[arg-type]
    visit(db, "u7", local(6, 1, 9))  # the week still running at `until` is left out

    found = report(db, local(5, 18, 9), local(6, 1, 10)).kpi("order_conversion")
    assert shares(found) == [(1, 4), (1, 3)]
    assert [p.start for p in found.points] == [local(5, 18, 0), local(5, 25, 0)]
    assert found.latest.value == pytest.approx(1 / 3)
    assert found.latest.interval == pytest.approx(stats.wilson(1, 3))
    assert found.target == 0.035 and found.on_target is True

    in_utc = report(db, local(5, 18, 9), local(6, 1, 10), timezone="UTC")
    assert shares(in_utc.kpi("order_conversion"))[0] == (1, 5)  # u6 lands in week A


def test_first_order_within_7_days_of_signup(db):
    sign_up(db, "n1", local(5, 18, 10))
    sign_up(db, "n2", local(5, 20, 10))
    sign_up(db, "n3", local(5, 24, 22))
    sign_up(db, "n4", local(5, 19, 10))
    sign_up(db, "late", local(5, 26, 10))  # its 7 days end after `until`
    order(db, "n1", local(5, 19))
    order(db, "n2", local(5, 27, 9, 59))  # 6 days 23:59 after signup
    order(db, "n4", local(5, 26, 10, 0))  # exactly 7 days: too late
    order(db, "late", local(5, 26, 11))
    add_user(db.factory, "browser", local(5, 19))  # first seen viewing: never signed up
    store_event(db.factory, "browser", "product_viewed", local(5, 19))
    order(db, "browser", local(5, 20))
    sign_up(db, "n1", local(5, 25, 10))  # signed up again: counts at the first one only

    found = report(db, local(5, 18), local(6, 1, 10)).kpi("first_order_7d")
    assert shares(found) == [(2, 4)]
    assert found.target == DEFAULT_TARGETS["first_order_7d"]
    assert found.on_target is True
    longer = report(db, local(5, 18), local(6, 8, 10)).kpi("first_order_7d")
    assert shares(longer) == [(2, 4), (1, 1)]


def test_retention_cohorts_count_visits_30_to_59_days_after_signup(db):
    signup = local(5, 18, 12)
    for user in ("r1", "r2", "r3", "r4"):
        sign_up(db, user, signup)
    visit(db, "r1", signup + timedelta(days=10))  # week 1
    visit(db, "r1", signup + timedelta(days=35))  # week 5, retained
    visit(db, "r1", signup + timedelta(days=36))
    visit(db, "r2", signup + timedelta(days=29))  # week 4, too early
    visit(db, "r2", signup + timedelta(days=60))  # week 8, too late
    visit(db, "r3", signup + timedelta(days=30))  # week 4, retained
    sign_up(db, "young", local(6, 2))  # its cohort's 60 days are not over
    visit(db, "young", local(6, 2) + timedelta(days=31))

    found = report(db, local(5, 18), local(8, 3, 1))
    retention = found.kpi("retention_30d")
    # The week of 25 May closed too (no signups); the week of 1 June's 60 days are not over.
    assert shares(retention) == [(2, 4), (0, 0)]
    assert retention.target == 0.30 and retention.on_target is None  # nobody to count
    assert retention.points[0].value == 0.5
    first, empty, young = found.cohorts[:3]
    assert (first.size, empty.size, young.size) == (4, 0, 1)
    assert first.weeks == [0.25, 0, 0, 0.5, 0.25, 0, 0, 0.25]
    assert first.retention is not None and first.retention.value == 0.5
    assert young.retention is None
    assert young.weeks[:4] == [0, 0, 0, 1.0] and young.weeks[-1] is None  # week 8 still open


def test_repurchase_and_monthly_actives_by_month(db):
    # June 2026 is the one complete month; its 90 / 365 days end on 1 July (Shanghai).
    order(db, "b1", local(6, 5))
    order(db, "b1", local(6, 20))
    order(db, "b2", local(6, 10))
    order(db, "b3", local(1, 10))  # outside the 90 days, inside the 365
    order(db, "b3", local(6, 10))
    order(db, "b4", local(2, 10, year=2025))  # outside both
    order(db, "b4", local(6, 11))
    for user, days in (("m1", (2, 3, 4)), ("m2", (2, 3)), ("m3", (5,)), ("m4", (8, 9))):
        for day in days:
            visit(db, user, local(6, day))
    visit(db, "m4", local(5, 31))  # May: not June's third visit

    found = report(db, local(6, 1), local(7, 1, 8))
    assert shares(found.kpi("repurchase_90d")) == [(1, 4)]
    assert shares(found.kpi("repurchase_365d")) == [(2, 4)]
    assert found.kpi("repurchase_365d").on_target is True  # 50% against 40%
    assert found.kpi("repurchase_90d").target is None
    active = found.kpi("monthly_active_3_visits")
    assert shares(active) == [(1, 4)]
    assert active.on_target is False
    assert [p.start for p in active.points] == [local(6, 1, 0)]


def test_gmv_counts_the_coupon_back_in_and_aov_divides_by_orders(db):
    with transaction(db.factory) as session:
        add_user(db.factory, "g1", local(5, 1))
        session.add(
            Coupon(
                issue_key="k1",
                code="NEW20",
                user_id="g1",
                journey_id="new_user_coupon",
                amount_fen=2000,
                issued_at=local(5, 18),
                expires_at=local(5, 25),
            )
        )
    order(db, "g1", local(5, 19), total_fen=10000)
    order(db, "g1", local(5, 19), total=88.5)
    order(db, "g2", local(5, 20), total_fen=5000, coupon_code="NEW20")
    order(db, "g3", local(5, 21), total_fen=1000, coupon_code="SHOP-OWN")  # not ours
    order(db, "g3", local(5, 26), total=10)

    found = report(db, local(5, 18), local(6, 1, 1), targets={"gmv": 20000})
    gmv, aov = found.kpi("gmv"), found.kpi("average_order_value")
    assert [(p.value, p.n) for p in gmv.points] == [(26850, 4), (1000, 1)]
    assert [p.value for p in aov.points] == [26850 / 4, 1000]
    assert gmv.on_target is False  # ¥10.00 last week against ¥200.00
    assert aov.target is None and aov.on_target is None


def test_an_empty_database_has_periods_without_values(db):
    found = report(db, local(5, 18), local(6, 1, 1))
    conversion = found.kpi("order_conversion")
    assert shares(conversion) == [(0, 0), (0, 0)]
    assert conversion.latest.value is None and conversion.on_target is None
    assert found.kpi("retention_30d").points == []
    as_json = found.as_dict()
    assert as_json["timezone"] == "Asia/Shanghai"
    assert [k["key"] for k in as_json["kpis"]] == [k.key for k in found.kpis]
