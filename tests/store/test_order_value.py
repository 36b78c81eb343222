"""An order's value before its discounts is the same in every report: the money per journey
and per broadcast (Python) and the KPIs' GMV (SQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Database
from sqlalchemy import select

from journey_support import add_user, store_event
from store.db import transaction
from store.kpi_queries import gmv_query, orders_by_user_query
from store.models import Coupon, Event
from store.money import coupon_amounts, order_value_fen

AT = datetime(2026, 6, 10, 12, tzinfo=UTC)

ORDERS = [
    # (properties, value before discounts in fen)
    ({"order_id": "o1", "total_fen": 8_000}, 8_000),
    ({"order_id": "o2", "total": 88.5}, 8_850),
    # An engine-issued coupon (¥20 off): added back.
    ({"order_id": "o3", "total_fen": 3_000, "coupon_code": "ENGINE20"}, 5_000),
    # The platform says what all its discounts came to: that, not the coupon, is added back.
    (
        {"order_id": "o4", "total_fen": 3_000, "coupon_code": "ENGINE20", "discount_fen": 2_500},
        5_500,
    ),
    # A promotion (满50减20) the engine knows nothing of.
    ({"order_id": "o5", "total_fen": 3_000, "discount_fen": 2_000}, 5_000),
    # A coupon code the engine never issued: nothing to add back.
    ({"order_id": "o6", "total_fen": 1_000, "coupon_code": "SHOP5"}, 1_000),
]


def test_every_report_values_an_order_alike(db: Database) -> None:
    add_user(db.factory, "u3", AT)
    with transaction(db.factory) as session:
        session.add(
            Coupon(
                issue_key="k", code="ENGINE20", user_id="u3", journey_id="j", amount_fen=2_000,
                min_spend_fen=5_000, issued_at=AT - timedelta(days=1),
                expires_at=AT + timedelta(days=6), redeemed_at=AT,
            )
        )  # fmt: skip
    for i, (properties, _) in enumerate(ORDERS):
        store_event(db.factory, f"u{i}", "order_placed", AT, properties=properties)

    with db.factory() as session:
        stored = [p for (p,) in session.execute(select(Event.properties).order_by(Event.id))]
        coupons = coupon_amounts(session, stored)
        in_python = [order_value_fen(p, coupons) for p in stored]
        spans = [(AT - timedelta(days=1), AT + timedelta(days=1))]
        ((_, in_sql, orders),) = session.execute(gmv_query(spans)).all()
        per_user = {
            user: fen for user, _, fen in session.execute(
                orders_by_user_query(AT - timedelta(days=1), AT + timedelta(days=1))
            )
        }  # fmt: skip

    assert in_python == [value for _, value in ORDERS]
    assert (in_sql, orders) == (sum(in_python), len(ORDERS))
    assert {u: round(f) for u, f in per_user.items()} == {
        f"u{i}": value for i, (_, value) in enumerate(ORDERS)
    }
