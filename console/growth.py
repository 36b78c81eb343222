"""The console's Growth page: the plan's KPIs (:mod:`store.kpi`) with their trend drawn as a
small SVG line against the target, and the signup cohorts as a heat map.

Numbers only go into the SVG and the cells' colours, formatted here; the words are the
terminal's (:mod:`devstack.kpi_view`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from devstack.kpi_view import (
    count_text,
    interval_text,
    period_text,
    status_text,
    value_text,
    when,
)
from devstack.money_view import difference_rows, ratio_line, roi_line
from devstack.program_view import disabled_line, rate_rows, window_line
from store.db import SessionFactory
from store.kpi import DEFAULT_SPAN, Cohort, Kpi, KpiReport, kpi_report
from store.money import Costs
from store.program import ProgramReport, program_report

log = logging.getLogger(__name__)

SPARK_W, SPARK_H, SPARK_PAD = 140, 30, 3
LINE, TARGET = "#2357c6", "#a36200"


def sparkline(kpi: Kpi) -> Markup:
    """Each period's value as a line (a period without data breaks it), the target as a
    dashed line, the latest value as a dot; empty when no period has a value."""
    values = [p.value for p in kpi.points]
    known = [v for v in values if v is not None]
    if not known:
        return Markup("")
    scale = known + ([kpi.target] if kpi.target is not None else [])
    low, high = min(scale), max(scale)
    span = (high - low) or 1.0
    step = (SPARK_W - 2 * SPARK_PAD) / max(len(values) - 1, 1)

    def y_at(v: float) -> float:
        return SPARK_H - SPARK_PAD - (SPARK_H - 2 * SPARK_PAD) * (v - low) / span

    runs: list[list[str]] = [[]]
    last = (0.0, 0.0)
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
            continue
        last = (SPARK_PAD + i * step, y_at(v))
        runs[-1].append(f"{last[0]:.1f},{last[1]:.1f}")
    parts = []
    if kpi.target is not None:
        y = y_at(kpi.target)
        parts.append(
            f'<line class="target" x1="{SPARK_PAD}" x2="{SPARK_W - SPARK_PAD}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{TARGET}" stroke-dasharray="3 2"/>'
        )
    parts.extend(
        f'<polyline class="trend" points="{" ".join(run)}" stroke="{LINE}" fill="none" '
        f'stroke-width="1.6"/>'
        for run in runs
        if len(run) > 1
    )
    parts.append(f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="2.5" fill="{LINE}"/>')
    return Markup(  # noqa: S704 - numbers only, formatted here
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" role="img" '
        f'aria-label="trend" width="{SPARK_W}" height="{SPARK_H}" '
        f'viewBox="0 0 {SPARK_W} {SPARK_H}">' + "".join(parts) + "</svg>"
    )


def heat(share: float | None) -> str:
    """A cell's inline style: the deeper the blue, the larger the share."""
    if share is None:
        return ""
    return f"background: rgba(35, 87, 198, {0.08 + 0.72 * share:.2f});" + (
        " color: #fff;" if share > 0.55 else ""
    )


def _cohort_row(cohort: Cohort, zone: str) -> dict[str, Any]:
    retention = cohort.retention
    return {
        "week": f"{cohort.start.astimezone(ZoneInfo(zone)):%Y-%m-%d}",
        "size": cohort.size,
        "cells": [("" if w is None else f"{w:.0%}", heat(w)) for w in cohort.weeks],
        "retention": ""
        if retention is None or retention.value is None
        else f"{retention.value:.1%}",
        "retention_style": heat(None if retention is None else retention.value),
    }


def window_start(since: str, *, now: datetime, timezone: str) -> datetime | None:
    """``since`` (``YYYY-MM-DD`` in ``timezone``) as an instant; None for the default window.

    Raises:
        ValueError: ``since`` is not a date before ``now``.
    """
    if not since:
        return None
    start = datetime.fromisoformat(since).replace(tzinfo=ZoneInfo(timezone))
    if start >= now:
        raise ValueError(f"{since!r} is not before now")
    return start


@dataclass(frozen=True)
class GrowthReport:
    """What the page shows: the KPIs and, with a global control group, the program's lift."""

    kpis: KpiReport
    program: ProgramReport | None = None


@dataclass
class _Entry:
    report: GrowthReport | None = None
    computed_at: datetime | None = None
    error: str | None = None
    running: threading.Event | None = None  # set when the computation in flight is done


@dataclass
class KpiCache:
    """The Growth page's reports by window, each computed by one background thread at a time.

    On a large store the KPIs take tens of seconds of SQL (``bench/kpi.py``: about 36 s on
    PostgreSQL with 1M users and 10M events), longer than a browser or a proxy waits. A page
    waits ``wait`` for a computation; past it, the page says the KPIs are being computed and
    reloads itself. A report is served for ``ttl`` after it was computed; an older one is
    still shown, marked with its time, while a fresh one is computed beside it. The KPIs
    cover complete weeks and months only, so a report a few minutes old differs from a fresh
    one only by events that arrived late.
    """

    compute: Callable[[datetime | None, datetime], GrowthReport]
    clock: Callable[[], datetime]
    ttl: timedelta = timedelta(minutes=15)
    wait: float = 3.0
    _entries: dict[datetime | None, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, since: datetime | None, *, refresh: bool = False) -> _Entry:
        """The entry for ``since``, starting a computation when there is none, it is older
        than the ttl, or ``refresh`` asks; waits up to ``wait`` for one in flight."""
        with self._lock:
            entry = self._entries.setdefault(since, _Entry())
            now = self.clock()
            stale = entry.computed_at is None or now - entry.computed_at >= self.ttl
            if (stale or refresh) and entry.running is None:
                entry.running = threading.Event()
                threading.Thread(
                    target=self._run, args=(since, entry), name="kpi-report", daemon=True
                ).start()
            running = entry.running
        if running is not None:
            running.wait(self.wait)
        return entry

    def _run(self, since: datetime | None, entry: _Entry) -> None:
        try:
            report = self.compute(since, self.clock())
        except Exception as exc:  # noqa: BLE001 - shown on the page, the next visit retries
            log.exception("the KPI report failed")
            with self._lock:
                entry.error, entry.computed_at = f"{type(exc).__name__}: {exc}", None
        else:
            with self._lock:
                entry.report, entry.computed_at, entry.error = report, self.clock(), None
        finally:
            with self._lock:
                done, entry.running = entry.running, None
            if done is not None:
                done.set()


def kpi_cache(
    factory: SessionFactory,
    *,
    clock: Callable[[], datetime],
    timezone: str,
    targets: dict[str, float],
    global_control_percent: float = 0.0,
    global_control_salt: str = "global-control",
    costs: Costs | None = None,
) -> KpiCache:
    """A cache computing reports from ``factory``'s store in ``timezone`` against ``targets``,
    and the program's lift over the same window when there is a global control group."""

    def compute(since: datetime | None, until: datetime) -> GrowthReport:
        with factory() as session:
            kpis = kpi_report(session, since=since, until=until, timezone=timezone, targets=targets)
            if not global_control_percent:
                return GrowthReport(kpis)
            program = program_report(
                session,
                since=since,
                until=until,
                percent=global_control_percent,
                salt=global_control_salt,
                costs=costs or Costs(),
            )
        return GrowthReport(kpis, program)

    return KpiCache(compute=compute, clock=clock)


def growth_page(
    cache: KpiCache,
    *,
    now: datetime,
    since: str,
    timezone: str,
) -> dict[str, Any] | None:
    """The page's context; ``since`` is a date (``YYYY-MM-DD``, in ``timezone``) or empty
    for the default window; None when it is not a date before now."""
    try:
        start = window_start(since, now=now, timezone=timezone)
    except ValueError:
        return None
    entry = cache.get(start)
    growth = entry.report
    report = growth.kpis if growth is not None else None
    status = {
        "computing": entry.running is not None,
        # The first computation of a window: the page reloads itself until it is done.
        "refresh_after": 5 if report is None and entry.running is not None else None,
        "computed_at": when(entry.computed_at, timezone) if entry.computed_at else "",
        "error": entry.error,
        "default_span_weeks": DEFAULT_SPAN // timedelta(weeks=1),
    }
    if growth is None or report is None:
        return {"title": "Growth", "since": since, "window": "", "kpis": [], "cohorts": []} | (
            status | {"weeks": 0, "program": None}
        )
    rows = []
    for kpi in report.kpis:
        latest = kpi.latest
        rows.append(
            {
                "key": kpi.key,
                "name": kpi.name,
                "period": period_text(kpi, latest, timezone),
                "value": value_text(kpi, latest.value if latest else None),
                "interval": interval_text(latest),
                "of": count_text(kpi, latest),
                "target": value_text(kpi, kpi.target) if kpi.target is not None else "",
                "status": status_text(kpi),
                "met": kpi.on_target,
                "trend": sparkline(kpi),
                "periods": f"{len(kpi.points)} {kpi.period}s",
            }
        )
    return status | {
        "title": "Growth",
        "window": f"{when(report.since, timezone)} to {when(report.until, timezone)} ({timezone})",
        "since": since or f"{(report.since.astimezone(ZoneInfo(timezone))):%Y-%m-%d}",
        "kpis": rows,
        "weeks": len(report.cohorts[0].weeks) if report.cohorts else 0,
        "cohorts": [_cohort_row(c, timezone) for c in report.cohorts],
        "program": program_context(growth.program, timezone),
    }


def program_context(program: ProgramReport | None, timezone: str) -> dict[str, Any]:
    """The program's lift in the terminal's words (:mod:`devstack.program_view`)."""
    if program is None:
        return {"disabled": disabled_line()}
    span = f"{when(program.since, timezone)} to {when(program.until, timezone)} ({timezone})"
    m = program.money
    ratio = program.sample_ratio
    return {
        "heading": window_line(program, span),
        "users": (
            f"{m.treatment.entrants} exposed ({m.treatment.converted} ordered), "
            f"{m.holdout.entrants} in control ({m.holdout.converted} ordered)"
        ),
        "differences": difference_rows(m),
        "rates": rate_rows(program),
        "roi": roi_line(m),
        "split": ratio_line(ratio, held="users in control"),
        "mismatch": ratio is not None and ratio.mismatch,
    }
