"""KPI speed: each query of ``store/kpi.py`` against a hand-written query of the same question.

Generates the population of ``bench/population.py`` (as ``bench/audiences.py`` does, with its
options: ``--schema``/``--sqlite-file``, ``--keep``, ``--reuse``, ``--timeout``, ``--set``), then
for each KPI over the default window (the 26 weeks before the data's ``now``) times the
project's query and the hand-written one in alternating rounds after a warm-up (best of
3-25), checks that they give the same numbers per period, and prints the ratio (goal ≤ 1.2).

The hand-written queries cut weeks and months the way a person would in each database:
``date_trunc`` on the local time on PostgreSQL, date functions at Shanghai's fixed +8 hours
on SQLite (the zone has no daylight saving, so the periods are the same).

    .venv/bin/python bench/kpi.py                    # PostgreSQL, 1M users, 10M events
    .venv/bin/python bench/kpi.py --quick            # 50k users, 500k events
    .venv/bin/python bench/kpi.py --dialect sqlite   # 100k users, 1M events
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from sqlalchemy import Select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.audiences import (  # noqa: E402
    NOW,
    PG_BASE,
    SIZES,
    Measured,
    Watch,
    _ms,
    _ratio,
    describe_target,
    migrate,
    open_target,
    populate,
    race,
    say,
)
from store import kpi  # noqa: E402
from store.db import make_engine, make_session_factory  # noqa: E402

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
Spans = list[tuple[datetime, datetime]]

_PG_WEEK = "to_char(date_trunc('week', {ts} AT TIME ZONE :tz), 'YYYY-MM-DD')"
_PG_MONTH = "to_char(date_trunc('month', {ts} AT TIME ZONE :tz), 'YYYY-MM-DD')"
# Each user's first sign-up (the same text in both dialects).
SIGNUPS = """
    SELECT user_id, min(timestamp) AS at FROM events
    WHERE event = 'user_signed_up' AND user_id IS NOT NULL GROUP BY user_id
"""


def _conversion(week: str) -> str:
    """Order conversion: the week's visitors, and those of them who ordered that week."""
    users = f"""SELECT DISTINCT {week} AS week, user_id FROM events
                WHERE event = '{{event}}' AND user_id IS NOT NULL
                  AND timestamp >= :lo AND timestamp < :hi"""
    return f"""
        WITH v AS ({users.format(event="session_started")}),
             o AS ({users.format(event="order_placed")})
        SELECT v.week, count(o.user_id), count(*)
        FROM v LEFT JOIN o ON o.week = v.week AND o.user_id = v.user_id
        GROUP BY v.week
    """


def _gmv(week: str, field: str, code: str) -> str:
    """GMV and orders per week: the amount paid plus the order's discount_fen, else the
    discount of an issued coupon."""
    return f"""
        SELECT {week},
               sum(round(coalesce({field.format(key="total_fen")},
                                  {field.format(key="total")} * 100, 0))
                   + coalesce(round({field.format(key="discount_fen")}), c.amount_fen, 0)),
               count(*)
        FROM events e LEFT JOIN coupons c ON c.code = {code}
        WHERE e.event = 'order_placed' AND e.user_id IS NOT NULL
          AND e.timestamp >= :lo AND e.timestamp < :hi
        GROUP BY 1
    """


_PG_COHORT_WEEKS = ",\n".join(
    f"count(DISTINCT s.user_id) FILTER (WHERE v.timestamp >= s.at + interval '{7 * k} days' "
    f"AND v.timestamp < s.at + interval '{7 * k + 7} days')"
    for k in range(1, kpi.COHORT_WEEKS + 1)
)
_PG_AT_LEAST = """
    SELECT {period}, count(*) FILTER (WHERE n >= {k}), count(*) FROM (
      SELECT {key} AS period, user_id, count(*) AS n FROM {source}
      WHERE event = '{event}' AND user_id IS NOT NULL {where}
      GROUP BY 1, 2
    ) x GROUP BY 1
"""
_PG_MONTH_ENDS = """
    (SELECT m AS month, (m + interval '1 month') AT TIME ZONE :tz AS month_end
     FROM generate_series(CAST(:mlo AS timestamptz) AT TIME ZONE :tz,
                          CAST(:mhi AS timestamptz) AT TIME ZONE :tz - interval '1 month',
                          interval '1 month') AS m) m
    JOIN events e ON e.timestamp >= m.month_end - interval '{days} days'
                 AND e.timestamp < m.month_end
"""

POSTGRESQL = {
    "order_conversion": _conversion(_PG_WEEK.format(ts="timestamp")),
    "first_order_7d": f"""
        SELECT {_PG_WEEK.format(ts="s.at")},
               count(*) FILTER (WHERE EXISTS (
                 SELECT 1 FROM events o WHERE o.user_id = s.user_id
                   AND o.event = 'order_placed'
                   AND o.timestamp >= s.at AND o.timestamp < s.at + interval '7 days')),
               count(*)
        FROM ({SIGNUPS}) s WHERE s.at >= :lo AND s.at < :new_hi GROUP BY 1
    """,
    "cohorts": f"""
        SELECT {_PG_WEEK.format(ts="s.at")},
               count(DISTINCT s.user_id) FILTER (
                 WHERE v.timestamp >= s.at + interval '30 days'
                   AND v.timestamp < s.at + interval '60 days'),
               count(DISTINCT s.user_id),
               {_PG_COHORT_WEEKS}
        FROM ({SIGNUPS}) s
        LEFT JOIN events v ON v.user_id = s.user_id AND v.event = 'session_started'
          AND v.timestamp >= s.at + interval '7 days' AND v.timestamp < s.at + interval '63 days'
        WHERE s.at >= :lo AND s.at < :hi
        GROUP BY 1
    """,
    "repurchase_90d": _PG_AT_LEAST.format(
        period="to_char(period, 'YYYY-MM-DD')",
        k=2,
        key="m.month",
        source=_PG_MONTH_ENDS.format(days=90),
        event="order_placed",
        where="",
    ),
    "repurchase_365d": _PG_AT_LEAST.format(
        period="to_char(period, 'YYYY-MM-DD')",
        k=2,
        key="m.month",
        source=_PG_MONTH_ENDS.format(days=365),
        event="order_placed",
        where="",
    ),
    "monthly_active_3_visits": _PG_AT_LEAST.format(
        period="period",
        k=kpi.ACTIVE_VISITS,
        key=_PG_MONTH.format(ts="timestamp"),
        source="events",
        event="session_started",
        where="AND timestamp >= :mlo AND timestamp < :mhi",
    ),
    "gmv": _gmv(
        _PG_WEEK.format(ts="e.timestamp"),
        "(e.properties ->> '{key}')::float8",
        "e.properties ->> 'coupon_code'",
    ),
}

_LITE_WEEK = "date({ts}, '+8 hours', 'weekday 0', '-6 days')"
_LITE_MONTH = "strftime('%Y-%m-01', {ts}, '+8 hours')"


def _lite_plus(ts: str, days: int) -> str:
    return f"(datetime({ts}, '+{days} days') || substr({ts}, 20))"


_LITE_COHORT_WEEKS = ",\n".join(
    f"count(DISTINCT CASE WHEN v.timestamp >= {_lite_plus('s.at', 7 * k)} "
    f"AND v.timestamp < {_lite_plus('s.at', 7 * k + 7)} THEN s.user_id END)"
    for k in range(1, kpi.COHORT_WEEKS + 1)
)
_LITE_REPURCHASE = """
    WITH RECURSIVE months(month) AS (
      SELECT date(:mlo, '+8 hours')
      UNION ALL
      SELECT date(month, '+1 month') FROM months
      WHERE date(month, '+1 month') < date(:mhi, '+8 hours')
    ), windows AS (
      SELECT month,
             datetime(month, '+1 month', '-8 hours', '-{days} days') || '.000000' AS since,
             datetime(month, '+1 month', '-8 hours') || '.000000' AS until
      FROM months
    )
    SELECT month, sum(n >= 2), count(*) FROM (
      SELECT w.month, e.user_id, count(*) AS n FROM windows w
      JOIN events e ON e.timestamp >= w.since AND e.timestamp < w.until
      WHERE e.event = 'order_placed' AND e.user_id IS NOT NULL
      GROUP BY 1, 2
    ) x GROUP BY month
"""

SQLITE = {
    "order_conversion": _conversion(_LITE_WEEK.format(ts="timestamp")),
    "first_order_7d": f"""
        SELECT {_LITE_WEEK.format(ts="s.at")},
               sum(EXISTS (SELECT 1 FROM events o WHERE o.user_id = s.user_id
                             AND o.event = 'order_placed' AND o.timestamp >= s.at
                             AND o.timestamp < {_lite_plus("s.at", 7)})),
               count(*)
        FROM ({SIGNUPS}) s WHERE s.at >= :lo AND s.at < :new_hi GROUP BY 1
    """,
    "cohorts": f"""
        SELECT {_LITE_WEEK.format(ts="s.at")},
               count(DISTINCT CASE WHEN v.timestamp >= {_lite_plus("s.at", 30)}
                                    AND v.timestamp < {_lite_plus("s.at", 60)}
                                   THEN s.user_id END),
               count(DISTINCT s.user_id),
               {_LITE_COHORT_WEEKS}
        FROM ({SIGNUPS}) s
        LEFT JOIN events v ON v.user_id = s.user_id AND v.event = 'session_started'
          AND v.timestamp >= {_lite_plus("s.at", 7)} AND v.timestamp < {_lite_plus("s.at", 63)}
        WHERE s.at >= :lo AND s.at < :hi
        GROUP BY 1
    """,
    "repurchase_90d": _LITE_REPURCHASE.format(days=90),
    "repurchase_365d": _LITE_REPURCHASE.format(days=365),
    "monthly_active_3_visits": f"""
        SELECT month, sum(n >= {kpi.ACTIVE_VISITS}), count(*) FROM (
          SELECT {_LITE_MONTH.format(ts="timestamp")} AS month, user_id, count(*) AS n
          FROM events WHERE event = 'session_started' AND user_id IS NOT NULL
            AND timestamp >= :mlo AND timestamp < :mhi
          GROUP BY 1, 2
        ) x GROUP BY month
    """,
    "gmv": _gmv(
        _LITE_WEEK.format(ts="e.timestamp"),
        "json_extract(e.properties, '$.{key}')",
        "json_extract(e.properties, '$.coupon_code')",
    ),
}


def _instant(dialect: str, at: datetime) -> Any:
    return at if dialect == "postgresql" else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _key(at: datetime) -> str:
    return f"{at.astimezone(ZONE):%Y-%m-%d}"


def _rounded(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(round(float(v)) if v is not None else 0 for v in row)


def ours(session: Session, query: Select[Any], spans: Spans) -> dict[str, tuple[Any, ...]]:
    """The project's rows keyed by their period's first day (local)."""
    return {_key(spans[row[0]][0]): _rounded(row[1:]) for row in session.execute(query)}


def theirs(session: Session, sql: str, params: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {str(row[0]): _rounded(row[1:]) for row in session.execute(text(sql), params)}


def measure(target: Any, dialect: str) -> list[tuple[str, dict[str, Measured]]]:
    since = NOW - kpi.DEFAULT_SPAN
    weeks = kpi.periods(since, NOW, "week", ZONE)
    months = kpi.periods(since, NOW, "month", ZONE)
    new_weeks = kpi.periods(since, NOW, "week", ZONE, closes_after=kpi.FIRST_ORDER_DAYS)
    params = {
        "tz": TZ,
        "lo": _instant(dialect, weeks[0][0]),
        "hi": _instant(dialect, weeks[-1][1]),
        "new_hi": _instant(dialect, new_weeks[-1][1]),
        "mlo": _instant(dialect, months[0][0]),
        "mhi": _instant(dialect, months[-1][1]),
    }
    repurchase = {d: [(hi - timedelta(days=d), hi) for _, hi in months] for d in (90, 365)}
    mine: dict[str, tuple[Select[Any], Spans, Spans]] = {
        "order_conversion": (kpi.order_conversion_query(weeks), weeks, weeks),
        "first_order_7d": (kpi.first_order_query(new_weeks, dialect), new_weeks, new_weeks),
        "cohorts": (kpi.cohort_query(weeks, dialect), weeks, weeks),
        "repurchase_90d": (kpi.repurchase_query(repurchase[90]), repurchase[90], months),
        "repurchase_365d": (kpi.repurchase_query(repurchase[365]), repurchase[365], months),
        "monthly_active_3_visits": (kpi.monthly_active_query(months), months, months),
        "gmv": (kpi.gmv_query(weeks), weeks, weeks),
    }
    hand = POSTGRESQL if dialect == "postgresql" else SQLITE
    factory = make_session_factory(target.engine)
    results = []
    for name, (query, _, keys) in mine.items():
        with factory() as session:
            runs: dict[str, Callable[[], Any]] = {
                "ours": functools.partial(ours, session, query, keys),
                "hand-written": functools.partial(theirs, session, hand[name], params),
            }
            found = race(session, runs)
        results.append((name, found))
        timings = " / ".join(_ms(found[label]).strip() for label in runs)
        say(f"  {name:<24} {timings} ms{'' if _agree(found) else '   <-- MISMATCH'}")
    return results


def _latest(rows: dict[str, tuple[Any, ...]] | None) -> str:
    """The latest period's numbers: numerator / denominator (GMV fen / orders)."""
    if not rows:
        return "(no rows)"
    period = max(rows)
    return f"{len(rows)} periods, {period}: " + " / ".join(f"{v:,}" for v in rows[period][:2])


def _agree(found: dict[str, Measured]) -> bool:
    a, b = found["ours"], found["hand-written"]
    return a.best_ms is not None and b.best_ms is not None and a.value == b.value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/kpi.py",
        description="Time each growth KPI query against a hand-written query of the same "
        "question on a generated population (PostgreSQL by default).",
    )
    parser.add_argument("--dialect", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--users", type=int, help="users to generate (default by dialect)")
    parser.add_argument("--events", type=int, help="events to generate, about")
    parser.add_argument("--quick", action="store_true", help="50,000 users / 500,000 events")
    parser.add_argument("--keep", action="store_true", help="keep the schema / file at the end")
    parser.add_argument("--reuse", action="store_true", help="measure the data already there")
    parser.add_argument("--schema", help="PostgreSQL schema to use (default: a new bench_*)")
    parser.add_argument("--sqlite-file", help="SQLite file to use (default: a temporary one)")
    parser.add_argument("--url", default=PG_BASE, help=f"PostgreSQL URL (default {PG_BASE})")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per query")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seed", type=float, default=0.42, help="PostgreSQL setseed()")
    parser.add_argument("--revision", default="head", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    users, events = SIZES["quick" if args.quick else args.dialect]
    args.users = args.users or users
    args.events = args.events or events
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with open_target(args) as target:
        loader = make_engine(target.url)
        migrate(loader, args.revision)
        loader.dispose()
        populate(target, args)
        Watch(target.engine, args.timeout)  # SQLite's statement timeout
        describe_target(target, args.revision)
        say(f"\nKPIs over the 26 weeks before {NOW.isoformat()}: best of 3-25 rounds, taking turns")
        results = measure(target, target.dialect)
    say()
    say(f"{'KPI':<24} {'ours ms':>10} {'hand ms':>10} {'ratio':>7}  answers (latest period)")
    for name, found in results:
        a, b = found["ours"], found["hand-written"]
        agree = "agree" if _agree(found) else "DIFFER"
        say(f"{name:<24} {_ms(a)} {_ms(b)} {_ratio(a, b)}  {agree} {_latest(a.value)}")
    return 0 if all(_agree(found) for _, found in results) else 1


if __name__ == "__main__":
    sys.exit(main())
