"""The growth plan's KPIs, computed in SQL (SQLite and PostgreSQL), one query each.

Definitions (the README's "Growth KPIs" says the same, for a reader of the numbers):

- a **visit** is a ``session_started`` event (once per session), an **order** an
  ``order_placed`` event, a **signup** the user's first ``user_signed_up`` event (a profile
  first seen viewing a product has not signed up); only events with a ``userId`` count;
- periods are calendar weeks (Monday 00:00) and months (the 1st, 00:00) in the settings'
  time zone (``LIFECYCLE_DEFAULT_TIMEZONE``), cut in Python with ``zoneinfo`` and handed to
  the query as instants; a KPI reports each period that is complete by ``until`` and began
  at or after the start of the period holding ``since``; a cohort KPI only the periods whose
  every member's window has closed by ``until``;
- **order conversion** (week): of the users with a visit in the week, the share who placed
  an order in the same week;
- **first order in 7 days** (week of signup): of the users who signed up in the week, the
  share who placed an order within 7 days (168 hours) of signing up;
- **30-day retention** (week of signup): of the users who signed up in the week, the share
  with a visit between 30 and 60 days after signing up; the cohort table shows the share
  visiting in each week 1-8 after signup;
- **repurchase, 90 / 365 days** (month): of the users who ordered in the 90 / 365 days
  before the month's end, the share who ordered at least twice in them;
- **monthly active with 3+ visits** (month): of the users with a visit in the month, the
  share with at least 3;
- **GMV** (week): orders' value before their coupon, as ``lifecycle report`` counts it (the
  amount paid, ``total_fen`` or else ``total`` in yuan, plus the discount of an engine-issued
  coupon the order names); **average order value** is GMV over orders.

Each rate carries its 95% Wilson interval (:func:`store.stats.wilson`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, and_, func, literal_column, select
from sqlalchemy.orm import Session, aliased

from store import stats
from store.models import Coupon, Event
from store.types import UTCDateTime

Period = Literal["week", "month"]
Unit = Literal["rate", "fen"]
VISIT, ORDER, SIGNUP = "session_started", "order_placed", "user_signed_up"
DEFAULT_SPAN = timedelta(weeks=26)
FIRST_ORDER_DAYS = 7
RETENTION_FROM, RETENTION_TO = 30, 60  # days after signup
COHORT_WEEKS = 8  # columns of the cohort table: weeks 1..8 after signup
ACTIVE_VISITS = 3
# The plan's targets; LIFECYCLE_KPI_TARGETS overrides any of them (and may set the others).
# It names no number for new users' first order: 15% in 7 days is ours, a common figure
# for an e-commerce app's new users.
DEFAULT_TARGETS: dict[str, float] = {
    "order_conversion": 0.035,
    "first_order_7d": 0.15,
    "retention_30d": 0.30,
    "repurchase_365d": 0.40,
    "monthly_active_3_visits": 0.65,
}
NAMES = {
    "order_conversion": "order conversion (visitors who ordered)",
    "first_order_7d": "new users' first order within 7 days",
    "retention_30d": "30-day retention (visit on days 30-59)",
    "repurchase_90d": "repurchase, 90 days (2+ orders)",
    "repurchase_365d": "repurchase, 365 days (2+ orders)",
    "monthly_active_3_visits": "monthly actives with 3+ visits",
    "gmv": "GMV",
    "average_order_value": "average order value",
}


@dataclass(frozen=True)
class Point:
    """One period: ``value`` is a share (``x`` of ``n``, with its interval) or an amount in
    fen (``n`` orders)."""

    start: datetime
    end: datetime
    n: int
    value: float | None
    x: int | None = None
    interval: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class Kpi:
    key: str
    unit: Unit
    period: Period
    target: float | None
    points: list[Point]

    @property
    def name(self) -> str:
        return NAMES[self.key]

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None

    @property
    def on_target(self) -> bool | None:
        """Whether the latest period met the target (None without either)."""
        latest = self.latest
        if latest is None or latest.value is None or self.target is None:
            return None
        return latest.value >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "unit": self.unit,
            "period": self.period,
            "target": self.target,
            "on_target": self.on_target,
            "latest": None if self.latest is None else self.latest.as_dict(),
            "points": [p.as_dict() for p in self.points],
        }


@dataclass(frozen=True)
class Cohort:
    """One week's signups: how many, the share visiting in each week after signup (None
    while that week is still open for some of them), and the 30-day retention."""

    start: datetime
    size: int
    weeks: list[float | None]
    retention: Point | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "size": self.size,
            "weeks": self.weeks,
            "retention_30d": None if self.retention is None else self.retention.as_dict(),
        }


@dataclass(frozen=True)
class KpiReport:
    since: datetime
    until: datetime
    timezone: str
    kpis: list[Kpi]
    cohorts: list[Cohort] = field(default_factory=list)

    def kpi(self, key: str) -> Kpi:
        return next(k for k in self.kpis if k.key == key)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "timezone": self.timezone,
            "kpis": [k.as_dict() for k in self.kpis],
            "cohorts": [c.as_dict() for c in self.cohorts],
        }


# --- periods --------------------------------------------------------------------------------


def _period_start(at: datetime, period: Period, zone: ZoneInfo) -> datetime:
    local = at.astimezone(zone)
    day = local.date() - timedelta(days=local.weekday()) if period == "week" else local.date()
    if period == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _next_start(start: datetime, period: Period, zone: ZoneInfo) -> datetime:
    if period == "week":
        day = start.date() + timedelta(days=7)
    else:
        day = (start.date().replace(day=1) + timedelta(days=32)).replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def periods(
    since: datetime, until: datetime, period: Period, zone: ZoneInfo, *, closes_after: float = 0
) -> list[tuple[datetime, datetime]]:
    """The complete ``period``s from the one holding ``since`` on, as UTC instants, whose
    end plus ``closes_after`` days is at or before ``until``."""
    out: list[tuple[datetime, datetime]] = []
    start = _period_start(since, period, zone)
    while True:
        end = _next_start(start, period, zone)
        if end + timedelta(days=closes_after) > until:
            return out
        out.append((start.astimezone(UTC), end.astimezone(UTC)))
        start = end


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


# --- the queries: each returns rows (i, x, n), or (i, fen, orders) ----------------------


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


def gmv_query(spans: Sequence[tuple[datetime, datetime]]) -> Select[Any]:
    p = _table(spans)
    props = Event.properties
    paid = func.round(
        func.coalesce(props["total_fen"].as_float(), props["total"].as_float() * 100, 0)
    )
    value = paid + func.coalesce(Coupon.amount_fen, 0)
    return (
        select(p.c.i, func.sum(value), func.count())
        .join_from(Event, p, _in(p, Event.timestamp))
        .outerjoin(Coupon, Coupon.code == props["coupon_code"].as_string())
        .where(_is(ORDER), Event.user_id.is_not(None))
        .group_by(p.c.i)
    )


# --- the report -----------------------------------------------------------------------------


def _rows(session: Session, query: Select[Any] | None) -> dict[int, tuple[Any, ...]]:
    if query is None:
        return {}
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


def _rates(
    spans: Sequence[tuple[datetime, datetime]], rows: dict[int, tuple[Any, ...]]
) -> Iterator[Point]:
    for i, (lo, hi) in enumerate(spans):
        x, n = rows.get(i, (0, 0))[:2]
        yield Point(
            lo,
            hi,
            int(n),
            x / n if n else None,
            int(x),
            stats.wilson(int(x), int(n)) if n else None,
        )


def kpi_report(
    session: Session,
    *,
    until: datetime,
    since: datetime | None = None,
    timezone: str = "Asia/Shanghai",
    targets: dict[str, float] | None = None,
) -> KpiReport:
    """Every KPI for the complete periods between ``since`` (default: 26 weeks before
    ``until``) and ``until``, against ``targets`` (the plan's by default)."""
    since = since if since is not None else until - DEFAULT_SPAN
    zone = ZoneInfo(timezone)
    aims = DEFAULT_TARGETS | (targets or {})
    dialect = session.get_bind().dialect.name

    def query(spans: list[Any], build: Any) -> dict[int, tuple[Any, ...]]:
        return _rows(session, build(spans) if spans else None)

    weeks = periods(since, until, "week", zone)
    months = periods(since, until, "month", zone)
    new_weeks = periods(since, until, "week", zone, closes_after=FIRST_ORDER_DAYS)
    cohort_weeks = weeks
    kpis: list[Kpi] = []

    def rate(key: str, period: Period, spans: list[Any], rows: dict[int, tuple[Any, ...]]):  # type: ignore[no-untyped-def]
        kpis.append(Kpi(key, "rate", period, aims.get(key), list(_rates(spans, rows))))

    rate("order_conversion", "week", weeks, query(weeks, order_conversion_query))
    rate(
        "first_order_7d",
        "week",
        new_weeks,
        query(new_weeks, lambda s: first_order_query(s, dialect)),
    )
    cohorts = query(cohort_weeks, lambda s: cohort_query(s, dialect))
    table: list[Cohort] = []
    retention_points = []
    for i, (lo, hi) in enumerate(cohort_weeks):
        retained, size, *by_week = cohorts.get(i, (0, 0, *([0] * COHORT_WEEKS)))
        weeks_known = [
            (v / size if size else None) if hi + timedelta(days=7 * k + 7) <= until else None
            for k, v in enumerate(by_week, start=1)
        ]
        closed = hi + timedelta(days=RETENTION_TO) <= until
        point = next(_rates([(lo, hi)], {0: (retained, size)})) if closed else None
        if point is not None:
            retention_points.append(point)
        table.append(Cohort(lo, int(size), weeks_known, point))
    kpis.append(Kpi("retention_30d", "rate", "week", aims.get("retention_30d"), retention_points))
    for days in (90, 365):
        windows = [(hi - timedelta(days=days), hi) for _, hi in months]
        rate(f"repurchase_{days}d", "month", months, query(windows, repurchase_query))
    rate("monthly_active_3_visits", "month", months, query(months, monthly_active_query))
    money = query(weeks, gmv_query)
    gmv, aov = [], []
    for i, (lo, hi) in enumerate(weeks):
        fen, orders = money.get(i, (0, 0))
        fen, orders = int(fen or 0), int(orders)
        gmv.append(Point(lo, hi, orders, fen))
        aov.append(Point(lo, hi, orders, fen / orders if orders else None))
    kpis.append(Kpi("gmv", "fen", "week", aims.get("gmv"), gmv))
    kpis.append(Kpi("average_order_value", "fen", "week", aims.get("average_order_value"), aov))
    return KpiReport(since, until, timezone, kpis, table)
