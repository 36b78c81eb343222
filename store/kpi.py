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

Each rate carries its 95% Wilson interval (:func:`store.stats.wilson`). The queries are in
:mod:`store.kpi_queries`; this module cuts the periods and assembles the report.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy.orm import Session

from store import stats
from store.kpi_queries import (
    ACTIVE_VISITS,
    COHORT_WEEKS,
    FIRST_ORDER_DAYS,
    ORDER,
    RETENTION_FROM,
    RETENTION_TO,
    SIGNUP,
    VISIT,
    cohort_query,
    first_order_query,
    gmv_query,
    monthly_active_query,
    order_conversion_query,
    plus_days,
    repurchase_query,
)

# The queries and their definitions are this module's too, for the callers that time them.
__all__ = [
    "ACTIVE_VISITS",
    "COHORT_WEEKS",
    "DEFAULT_SPAN",
    "DEFAULT_TARGETS",
    "FIRST_ORDER_DAYS",
    "NAMES",
    "ORDER",
    "RETENTION_FROM",
    "RETENTION_TO",
    "SIGNUP",
    "VISIT",
    "Cohort",
    "Kpi",
    "KpiReport",
    "Period",
    "Point",
    "Unit",
    "cohort_query",
    "first_order_query",
    "gmv_query",
    "kpi_report",
    "monthly_active_query",
    "order_conversion_query",
    "periods",
    "plus_days",
    "repurchase_query",
]

Period = Literal["week", "month"]
Unit = Literal["rate", "fen"]
DEFAULT_SPAN = timedelta(weeks=26)
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
