"""The SQL of the growth plan's KPIs (SQLite and PostgreSQL), one query per KPI.

Each query takes the periods as UTC instants (:func:`store.kpi.periods` cuts them in the
settings' time zone) and returns rows ``(i, x, n)`` for period ``i`` (``x`` of ``n`` users),
or ``(i, fen, orders)`` for GMV; :mod:`store.kpi` assembles the report and its definitions
say what each KPI counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, and_, func, literal_column, select
from sqlalchemy.orm import aliased

from store.models import Coupon, Event
from store.types import UTCDateTime

_Query = TypeVar("_Query", bound=Select)  # type: ignore[type-arg]

VISIT, ORDER, SIGNUP = "session_started", "order_placed", "user_signed_up"
FIRST_ORDER_DAYS = 7
RETENTION_FROM, RETENTION_TO = 30, 60  # days after signup
COHORT_WEEKS = 8  # columns of the cohort table: weeks 1..8 after signup
ACTIVE_VISITS = 3


def _table(spans: Sequence[tuple[datetime, datetime]]) -> sa.Subquery:
    """The periods as rows ``(i, lo, hi)``: the queries join events and users to them."""
    rows = [
        select(
            sa.literal(i, sa.Integer).label("i"),
            sa.literal(lo, UTCDateTime).label("lo"),
            sa.literal(hi, UTCDateTime).label("hi"),
        )
        for i, (lo, hi) in enumerate(spans)
    ]
    return sa.union_all(*rows).subquery("p")


def _is(name: str) -> ColumnElement[bool]:
    # A literal, so SQLite can use the partial index on orders.
    return Event.event == literal_column(f"'{name}'")


def _in(p: sa.Subquery, column: Any) -> ColumnElement[bool]:
    return and_(column >= p.c.lo, column < p.c.hi)


def plus_days(column: Any, days: int, dialect: str) -> ColumnElement[Any]:
    """``column`` + ``days`` days, comparable with stored instants (SQLite keeps them as
    text: the date-time moves, the microseconds stay)."""
    if dialect == "sqlite":
        return func.datetime(column, f"+{days} days").concat(func.substr(column, 20))
    return column + sa.literal(timedelta(days=days), sa.Interval())


def order_conversion_query(spans: Sequence[tuple[datetime, datetime]]) -> Select[Any]:
    p = _table(spans)

    def users(name: str) -> sa.Subquery:
        return (
            select(p.c.i, Event.user_id)
            .join_from(Event, p, _in(p, Event.timestamp))
            .where(_is(name), Event.user_id.is_not(None))
            .distinct()
            .subquery()
        )

    v, o = users(VISIT), users(ORDER)
    return (
        select(v.c.i, func.count(o.c.user_id), func.count())
        .select_from(v.outerjoin(o, and_(o.c.i == v.c.i, o.c.user_id == v.c.user_id)))
        .group_by(v.c.i)
    )


def _signups(p: sa.Subquery) -> sa.Subquery:
    """Per period: the users whose first ``user_signed_up`` event falls in it, and when."""
    first, earlier = aliased(Event), aliased(Event)
    before = (
        select(1)
        .where(
            earlier.user_id == first.user_id,
            earlier.event == literal_column(f"'{SIGNUP}'"),
            earlier.timestamp < first.timestamp,
        )
        .exists()
    )
    return (
        select(p.c.i, first.user_id, func.min(first.timestamp).label("at"))
        .join_from(first, p, _in(p, first.timestamp))
        .where(first.event == literal_column(f"'{SIGNUP}'"), first.user_id.is_not(None), ~before)
        .group_by(p.c.i, first.user_id)
        .subquery("signups")
    )


def first_order_query(spans: Sequence[tuple[datetime, datetime]], dialect: str) -> Select[Any]:
    su = _signups(_table(spans))
    ordered = (
        select(1)
        .where(
            Event.user_id == su.c.user_id,
            _is(ORDER),
            Event.timestamp >= su.c.at,
            Event.timestamp < plus_days(su.c.at, FIRST_ORDER_DAYS, dialect),
        )
        .exists()
    )
    return select(su.c.i, func.count(sa.case((ordered, 1))), func.count()).group_by(su.c.i)


def cohort_query(spans: Sequence[tuple[datetime, datetime]], dialect: str) -> Select[Any]:
    """Per signup week: retained (days 30-59), signups, then visitors in weeks 1..8."""
    su = _signups(_table(spans))

    def day(n: int) -> ColumnElement[Any]:
        return plus_days(su.c.at, n, dialect)

    def visited(lo: int, hi: int) -> ColumnElement[int]:
        within = and_(Event.timestamp >= day(lo), Event.timestamp < day(hi))
        return func.count(sa.distinct(sa.case((within, su.c.user_id))))

    last = max(RETENTION_TO, 7 * (COHORT_WEEKS + 1))
    visits = and_(
        Event.user_id == su.c.user_id,
        _is(VISIT),
        Event.timestamp >= day(min(7, RETENTION_FROM)),
        Event.timestamp < day(last),
    )
    return (
        select(
            su.c.i,
            visited(RETENTION_FROM, RETENTION_TO),
            func.count(sa.distinct(su.c.user_id)),
            *(visited(7 * k, 7 * k + 7) for k in range(1, COHORT_WEEKS + 1)),
        )
        .select_from(su.outerjoin(Event, visits))
        .group_by(su.c.i)
    )


def _at_least(spans: Sequence[tuple[datetime, datetime]], name: str, k: int) -> Select[Any]:
    """Per period: the users with ``k`` or more ``name`` events in it, and those with one."""
    p = _table(spans)
    per_user = (
        select(p.c.i, func.count().label("events"))
        .join_from(Event, p, _in(p, Event.timestamp))
        .where(_is(name), Event.user_id.is_not(None))
        .group_by(p.c.i, Event.user_id)
        .subquery()
    )
    return select(
        per_user.c.i, func.count(sa.case((per_user.c.events >= k, 1))), func.count()
    ).group_by(per_user.c.i)


def repurchase_query(spans: Sequence[tuple[datetime, datetime]]) -> Select[Any]:
    return _at_least(spans, ORDER, 2)


def monthly_active_query(spans: Sequence[tuple[datetime, datetime]]) -> Select[Any]:
    return _at_least(spans, VISIT, ACTIVE_VISITS)


def _order_value() -> ColumnElement[Any]:
    """An order's value before its discounts, in fen (as :func:`store.money.order_value_fen`):
    the amount paid (``total_fen``, or ``total`` in yuan) plus ``discount_fen`` when the
    platform sends it, else the discount of the coupon it names (joined as :class:`Coupon`)."""
    props = Event.properties
    paid = func.round(
        func.coalesce(props["total_fen"].as_float(), props["total"].as_float() * 100, 0)
    )
    discount = func.round(props["discount_fen"].as_float())
    return paid + func.coalesce(discount, Coupon.amount_fen, 0)


def _with_coupon(stmt: _Query) -> _Query:
    return stmt.outerjoin(Coupon, Coupon.code == Event.properties["coupon_code"].as_string())


def gmv_query(spans: Sequence[tuple[datetime, datetime]]) -> Select[Any]:
    p = _table(spans)
    return (
        _with_coupon(
            select(p.c.i, func.sum(_order_value()), func.count()).join_from(
                Event, p, _in(p, Event.timestamp)
            )
        )
        .where(_is(ORDER), Event.user_id.is_not(None))
        .group_by(p.c.i)
    )


def orders_by_user_query(since: datetime, until: datetime) -> Select[str | None, int, Any]:
    """Rows ``(user_id, orders, fen)``: each buyer's orders between ``since`` and
    ``until`` and their value before coupons."""
    return (
        _with_coupon(select(Event.user_id, func.count(), func.sum(_order_value())))
        .where(
            _is(ORDER),
            Event.user_id.is_not(None),
            Event.timestamp >= since,
            Event.timestamp < until,
        )
        .group_by(Event.user_id)
    )


def retained_signups_query(signed_up_from: datetime, until: datetime, dialect: str) -> Select[Any]:
    """Rows ``(user_id, retained)`` for every user whose first signup lies between
    ``signed_up_from`` and ``until`` less 60 days (so their 30-59 day window has closed):
    retained when they visited 30 to 59 days after signing up."""
    first = (
        select(Event.user_id, func.min(Event.timestamp).label("at"))
        .where(_is(SIGNUP), Event.user_id.is_not(None))
        .group_by(Event.user_id)
        .subquery("su")
    )
    visit = aliased(Event)
    came_back = (
        select(visit.id)
        .where(
            visit.user_id == first.c.user_id,
            visit.event == literal_column(f"'{VISIT}'"),
            visit.timestamp >= plus_days(first.c.at, RETENTION_FROM, dialect),
            visit.timestamp < plus_days(first.c.at, RETENTION_TO, dialect),
        )
        .exists()
    )
    return select(first.c.user_id, came_back).where(
        first.c.at >= signed_up_from,
        first.c.at < until - timedelta(days=RETENTION_TO),
    )
