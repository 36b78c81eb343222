"""The program's lift against the global control group, in words a growth lead reads:
the terminal's and the console's (:mod:`store.program`)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from devstack.money_view import difference_rows, interval, points, ratio_line, roi_line, verdict
from store.program import ProgramReport


@dataclass(frozen=True)
class RateRow:
    label: str
    exposed: str
    control: str
    value: str
    interval: str
    verdict: str


def rate_rows(report: ProgramReport) -> list[RateRow]:
    """30-day retention and repurchase per group, and the exposed group's lead in points."""
    rows = []
    for label, rate in (
        ("30-day retention of signups", report.retention_30d),
        ("repurchase (2+ orders) of buyers", report.repurchase),
    ):
        d = rate.difference
        rows.append(
            RateRow(
                label,
                _share(rate.exposed),
                _share(rate.control),
                points(d.value),
                interval(d, points),
                verdict(d),
            )
        )
    return rows


def _share(counts: tuple[int, int]) -> str:
    x, n = counts
    return f"{x} of {n} ({x / n:.1%})" if n else "—"


def disabled_line() -> str:
    return (
        "no global control group (LIFECYCLE_GLOBAL_CONTROL_PERCENT is 0): the program's "
        "total lift cannot be measured; 5 holds out 5% of users from every marketing message"
    )


def window_line(report: ProgramReport, when: str) -> str:
    return (
        f"Program lift: users exposed to marketing against the global control group "
        f"({report.percent:g}% of users, sent no marketing message), {when}"
    )


def print_program(report: ProgramReport, console: Console, *, when: str) -> None:
    """Groups, the differences with their intervals, retention and repurchase, the split."""
    console.print(f"[bold]{window_line(report, when)}[/]", highlight=False)
    m = report.money
    diffs = Table(title="exposed against control (95% intervals, per user)")
    for col in ("", "value", "95% interval", ""):
        diffs.add_column(col, justify="right" if col else "left")
    for row in difference_rows(m):
        diffs.add_row(row.label, row.value, row.interval, row.verdict)
    for rate in rate_rows(report):
        diffs.add_row(rate.label, rate.value, rate.interval, rate.verdict)
    console.print(
        f"users: {m.treatment.entrants} exposed ({m.treatment.converted} ordered), "
        f"{m.holdout.entrants} in control ({m.holdout.converted} ordered)",
        highlight=False,
    )
    console.print(diffs)
    console.print(roi_line(m), highlight=False, soft_wrap=True)
    split = ratio_line(report.sample_ratio, held="users in control")
    if split is not None:
        mismatch = report.sample_ratio is not None and report.sample_ratio.mismatch
        console.print(split, style="bold red" if mismatch else "", highlight=False)
