"""The console's Growth page: the plan's KPIs (:mod:`store.kpi`) with their trend drawn as a
small SVG line against the target, and the signup cohorts as a heat map.

Numbers only go into the SVG and the cells' colours, formatted here; the words are the
terminal's (:mod:`devstack.kpi_view`).
"""

from __future__ import annotations

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
from store.db import SessionFactory
from store.kpi import DEFAULT_SPAN, Cohort, Kpi, kpi_report

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


def growth_page(
    factory: SessionFactory,
    *,
    now: datetime,
    since: str,
    timezone: str,
    targets: dict[str, float],
) -> dict[str, Any] | None:
    """The page's context; ``since`` is a date (``YYYY-MM-DD``, in ``timezone``) or empty
    for the default window; None when it is not a date before now."""
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=ZoneInfo(timezone))
        except ValueError:
            return None
        if start >= now:
            return None
    with factory() as session:
        report = kpi_report(session, since=start, until=now, timezone=timezone, targets=targets)
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
    return {
        "title": "Growth",
        "window": f"{when(report.since, timezone)} to {when(report.until, timezone)} ({timezone})",
        "since": since or f"{(report.since.astimezone(ZoneInfo(timezone))):%Y-%m-%d}",
        "kpis": rows,
        "weeks": len(report.cohorts[0].weeks) if report.cohorts else 0,
        "cohorts": [_cohort_row(c, timezone) for c in report.cohorts],
        "default_span_weeks": DEFAULT_SPAN // timedelta(weeks=1),
    }
