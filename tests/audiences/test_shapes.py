"""The shapes that keep population queries fast, and that they answer exactly: event
conditions over the same rows asked in one grouped pass, coupon holders counted from the
coupons alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Database
from reference import CouponRow, EventRow, Population, PushTokenRow, UserRow
from seed import picks, seed

from audiences.audience import Audience, shipped_audiences
from audiences.rules import parse_rule
from store.erasure import forget_user

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
D, H = timedelta(days=1), timedelta(hours=1)


def orders(user_id: str | None, total: float, *days_ago: int) -> list[EventRow]:
    return [EventRow(user_id, "order_placed", NOW - n * D, {"total": total}) for n in days_ago]


def population() -> Population:
    users = [
        UserRow(uid, created_at=NOW - 400 * D)
        for uid in ("none", "one_cheap", "three_cheap", "two_big", "old_big")
    ]
    users.append(UserRow("viewer", created_at=NOW - 12 * H))
    events = [
        *orders("one_cheap", 10, 5),
        *orders("three_cheap", 10, 1, 30, 89),
        *orders("two_big", 1500, 2, 3),
        *orders("old_big", 5000, 91, 100, 120),
        EventRow("viewer", "page_viewed", NOW - D, {"total": 5000}),
        # Rows nobody in the users table owns: an erased profile's, an anonymous visitor's.
        *orders("erased:1", 5000, 1, 2, 3),
        *orders(None, 5000, 1, 2, 3),
    ]
    return Population(users, events)


def within_90d(**measure: Any) -> dict[str, Any]:
    return {"event": {"name": "order_placed", "within": "90d", **measure}}


ORDERS_3 = within_90d(at_least=3)
SPENT_2000 = within_90d(sum={"property": "total", "gte": 2000})
CHEAP = within_90d(sum={"property": "total", "lt": 100})
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("any", {"any": [ORDERS_3, SPENT_2000]}, {"three_cheap", "two_big"}),
    ("all", {"all": [within_90d(at_least=2), SPENT_2000]}, {"two_big"}),
    ("any-once", {"any": [within_90d(), ORDERS_3]}, {"one_cheap", "three_cheap", "two_big"}),
    # Conditions that hold for users without a row in the window, beside ones that do not.
    ("any-none", {"any": [ORDERS_3, within_90d(at_most=0)]},
     {"none", "three_cheap", "old_big", "viewer"}),
    ("all-few-cheap", {"all": [within_90d(at_most=2), CHEAP]},
     {"none", "one_cheap", "old_big", "viewer"}),
    ("all-exactly-0", {"all": [within_90d(exactly=0), SPENT_2000]}, set()),
    ("not-any", {"not": {"any": [ORDERS_3, SPENT_2000]}},
     {"none", "one_cheap", "old_big", "viewer"}),
    ("any-profile", {"any": [ORDERS_3, SPENT_2000, {"signed_up": {"within": "1d"}}]},
     {"three_cheap", "two_big", "viewer"}),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "members"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_conditions_over_the_same_rows_pick_exactly_their_users(
    db: Database, rule: dict[str, Any], members: set[str]
) -> None:
    pop = population()
    assert pop.members(rule, NOW) == members  # the reference agrees
    audience = Audience("a", "a", parse_rule(rule))
    with db.factory() as session:
        seed(session, pop, at=NOW)
        picks(session, audience, pop, members, now=NOW)
        session.rollback()


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL sent to the database inside the block."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def test_high_value_reads_the_orders_once(db: Database) -> None:
    """≥ 3 orders or ≥ ¥2,000 in 90 days: one pass grouping the orders by user, as a person
    would write it, not one pass per condition."""
    with db.factory() as session, statements(db) as sent:
        shipped_audiences()["high_value"].count(session, now=NOW)
        shipped_audiences()["high_value"].members(session, now=NOW)
    for sql in sent:
        assert sql.count("FROM events") == 1 and sql.count("GROUP BY") == 1, sql
        assert "UNION" not in sql


def test_coupon_holders_are_counted_from_the_coupons(db: Database) -> None:
    """A coupon always belongs to a user (deleted with them), so counting its holders needs
    no pass over the users; a forgotten user's coupons no longer count."""
    pop = Population(
        users=[UserRow(uid, created_at=NOW - 30 * D) for uid in ("a", "b", "c", "d")],
        coupons=[
            CouponRow("a", NOW + 24 * H),
            CouponRow("a", NOW + 47 * H),  # two coupons, one holder
            CouponRow("b", NOW + 48 * H),
            CouponRow("c", NOW + 24 * H, redeemed_at=NOW - H),
            CouponRow("d", NOW + 24 * H),
        ],
        push_tokens=[PushTokenRow("c", "t1"), PushTokenRow("c", "t2")],
    )
    expiring = shipped_audiences()["coupons_expiring_48h"]
    either = Audience("e", "e", parse_rule({"any": [{"coupon": {"expiring_within": "48h"}},
                                                    {"reachable": "push"}]}))  # fmt: skip
    with db.factory() as session:
        seed(session, pop, at=NOW)
        with statements(db) as sent:
            assert expiring.count(session, now=NOW) == 3
            assert either.count(session, now=NOW) == 4
        assert all("users" not in sql for sql in sent), sent
        forget_user(session, user_id="d", now=NOW)
        session.flush()
        assert expiring.count(session, now=NOW) == 2
        assert set(expiring.members(session, now=NOW)) == {"a", "b"}
        assert either.count(session, now=NOW) == 3
        session.rollback()


def test_a_rule_compiled_once_answers_at_every_now(db: Database) -> None:
    """Statements are kept per rule with ``now`` as parameters: asked again later, the same
    audience moves its windows with the clock."""
    pop = Population(
        users=[UserRow("a", created_at=NOW - 2 * D), UserRow("b", created_at=NOW - 20 * D)],
        events=[
            *orders("a", 50, 5),
            *orders("b", 50, 1),
            EventRow("a", "cart_updated", NOW - 2 * D, {"cart_id": "c1"}),
        ],
        coupons=[CouponRow("a", NOW + 24 * H), CouponRow("b", NOW + 60 * H)],
    )
    rules: list[dict[str, Any]] = [
        {"coupon": {"expiring_within": "48h"}},
        {"all": [{"signed_up": {"within": "7d"}},
                 {"event": {"name": "order_placed", "within": "7d"}}]},
        {"open_cart": {"within": "7d"}},
        {"any": [ORDERS_3, {"last_seen": {"not_within": "1d"}}]},
    ]  # fmt: skip
    audiences = [Audience("a", "a", parse_rule(rule)) for rule in rules]
    with db.factory() as session:
        seed(session, pop, at=NOW)
        for now in (NOW, NOW + 36 * H, NOW + 3 * D, NOW - 10 * D):
            for rule, audience in zip(rules, audiences, strict=True):
                picks(session, audience, pop, pop.members(rule, now), now=now)
        assert [a.count(session, now=NOW + 36 * H) for a in audiences[:2]] == [1, 1]
        session.rollback()
