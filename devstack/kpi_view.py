"""The growth KPIs on the terminal and in the console: the same words and numbers in both."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console
from rich.table import Table

from devstack.money_view import yuan
from store.kpi import Kpi, KpiReport, Point

BLOCKS = "▁▂▃▄▅▆▇█"
TREND_PERIODS = 12  # the terminal's trend; the console draws every period
TREND = f"trend (last {TREND_PERIODS})"


def value_text(kpi: Kpi, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if kpi.unit == "rate" else yuan(value)


def interval_text(point: Point | None) -> str:
    if point is None or point.interval is None:
        return ""
    low, high = point.interval
    return f"[{low:.1%}, {high:.1%}]"


def count_text(kpi: Kpi, point: Point | None) -> str:
    """What the latest value is made of: "12 of 340 visitors", "85 orders"."""
    if point is None:
        return ""
    if kpi.unit == "fen":
        return f"{point.n:,} order{'s' if point.n != 1 else ''}"
    return f"{point.x or 0:,} of {point.n:,}"


def status_text(kpi: Kpi) -> str:
    met = kpi.on_target
    if met is None:
        return "no target" if kpi.target is None else "no data"
    return "met" if met else "below"


def period_text(kpi: Kpi, point: Point | None, zone: str) -> str:
    """The week's first day, or the month."""
    if point is None:
        return "none yet"
    start = point.start.astimezone(ZoneInfo(zone))
    return f"{start:%Y-%m-%d}" if kpi.period == "week" else f"{start:%Y-%m}"


def when(at: datetime, zone: str) -> str:
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


def sparkline(values: list[float | None]) -> str:
    """The trend as block characters, lowest to highest; a gap (no data) as a space."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(
        " " if v is None else BLOCKS[round((v - low) / span * (len(BLOCKS) - 1))] for v in values
    )


def print_kpis(report: KpiReport, console: Console) -> None:
    zone = report.timezone
    console.print(
        f"[bold]Growth KPIs[/bold], {when(report.since, zone)} to {when(report.until, zone)} "
        f"({zone}): each KPI's latest complete period"
    )
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    for column in ("KPI", "latest", "value", "95% interval", "of", "target", "", TREND):
        right = column in ("value", "of", "target")
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for kpi in report.kpis:
        latest = kpi.latest
        table.add_row(
            kpi.key,
            period_text(kpi, latest, zone),
            value_text(kpi, latest.value if latest else None),
            interval_text(latest),
            count_text(kpi, latest),
            value_text(kpi, kpi.target) if kpi.target is not None else "",
            status_text(kpi),
            sparkline([p.value for p in kpi.points][-TREND_PERIODS:]),
        )
    console.print(table)
    if not report.cohorts:
        return
    console.print()
    console.print("signup cohorts: the share visiting in each week after signup, and retained")
    cohorts = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    cohorts.add_column("week of", no_wrap=True)
    cohorts.add_column("users", justify="right")
    for k in range(1, len(report.cohorts[0].weeks) + 1):
        cohorts.add_column(f"w{k}", justify="right")
    cohorts.add_column("30d", justify="right")
    for c in report.cohorts:
        cohorts.add_row(
            f"{c.start.astimezone(ZoneInfo(zone)):%Y-%m-%d}",
            f"{c.size:,}",
            *("" if w is None else f"{w:.0%}" for w in c.weeks),
            "" if c.retention is None or c.retention.value is None else f"{c.retention.value:.1%}",
        )
    console.print(cohorts)
