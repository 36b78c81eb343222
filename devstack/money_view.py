"""A journey's money on the terminal and in the console: the same words and numbers in both.

Amounts are fen in the report and yuan here (¥1 = 100 fen); every difference is shown with
its 95% interval and whether it is significant yet (:mod:`store.money`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from store.money import MoneyReport
from store.stats import SampleRatio
from store.uplift import Estimate, Money

Format = Callable[[float | None], str]


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}" if value < 0 or value > 0 else "0.0%"


def yuan(fen: float | None) -> str:
    return "—" if fen is None else f"{'-' if fen < 0 else ''}¥{abs(fen) / 100:,.2f}"


def signed_yuan(fen: float | None) -> str:
    return yuan(fen) if fen is None or fen <= 0 else "+" + yuan(fen)


def points(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.1f}"


def count(x: float | None) -> str:
    return "—" if x is None else f"{x:+,.1f}"


def interval(e: Estimate, fmt: Format) -> str:
    """``[low, high]`` in ``fmt``; an open end (no bound) shows as ∞; no interval, "" (or
    why not, when a comparison was made)."""
    if e.low is None and e.high is None:
        return "(too few buyers)" if e.unsure else ""
    low = fmt(e.low) if e.low is not None else "-∞"
    return f"[{low}, {fmt(e.high) if e.high is not None else '∞'}]"


def verdict(e: Estimate) -> str:
    return "" if e.significant is None else "significant" if e.significant else "not yet"


@dataclass(frozen=True)
class DifferenceRow:
    label: str
    estimate: Estimate
    value: str
    interval: str
    verdict: str


def difference_rows(money: Money) -> list[DifferenceRow]:
    """Each difference of treatment against holdout, formatted."""
    rows: list[tuple[str, Estimate, Format]] = [
        ("conversion (points)", money.conversion, points),
        ("incremental orders", money.incremental_orders, count),
        ("incremental GMV", money.incremental_gmv_fen, signed_yuan),
        ("incremental margin", money.incremental_margin_fen, signed_yuan),
        ("cost per incremental order", money.cost_per_incremental_order_fen, yuan),
        ("ROI", money.roi, pct),
    ]
    return [
        DifferenceRow(label, e, fmt(e.value), interval(e, fmt), verdict(e))
        for label, e, fmt in rows
    ]


def roi_line(money: Money) -> str:
    """One line a growth lead can read: ROI with its interval, and whether it is real yet."""
    roi = money.roi
    if roi.value is None:
        reason = "no holdout to compare with" if not money.holdout.entrants else "nothing spent"
        return f"{money.label}: ROI — ({reason})"
    bounds = "" if roi.unsure else interval(roi, pct)  # the note says why there are none
    shown = " ".join(filter(None, (pct(roi.value), bounds)))
    return (
        f"{money.label}: ROI {shown} on {yuan(money.spend_fen)} spent, incremental margin "
        f"{signed_yuan(money.incremental_margin_fen.value)} — {roi.note()}"
    )


def pricing_line(money: MoneyReport) -> str:
    costs = money.costs
    return (
        f"{money.window} after entry; SMS {yuan(costs.sms_segment_fen)} a segment, email "
        f"{yuan(costs.email_fen)}, push {yuan(costs.push_fen)}, margin {costs.margin_rate:.0%}"
    )


def split_line(money: MoneyReport) -> str | None:
    """The sample-ratio check in words; None when the journey holds nobody out."""
    return ratio_line(money.sample_ratio)


def ratio_line(ratio: SampleRatio | None, *, held: str = "users held out") -> str | None:
    """A sample-ratio check in words: how many were ``held`` against the configured share."""
    if ratio is None:
        return None
    verdict = (
        "SAMPLE RATIO MISMATCH: the split looks broken, do not trust the comparison"
        if ratio.mismatch
        else "as expected"
    )
    return (
        f"split: {ratio.holdout} of {ratio.total} {held} ({ratio.realized_share:.1%}) "
        f"against {ratio.expected_share:.0%} configured, chi-square p = {ratio.p_value:.3g}: "
        f"{verdict}"
    )


def print_money(money: MoneyReport, console: Console) -> None:
    """Per group totals, the differences with their intervals, the split check, per step."""
    console.print(f"[bold]Money[/] ({pricing_line(money)})", highlight=False)
    j = money.journey
    groups = Table()
    for col in ("group", "entrants", "converted", "orders", "GMV", "coupon cost", "message cost"):
        groups.add_column(col, justify="left" if col == "group" else "right")
    for name, g in (("treatment", j.treatment), ("holdout", j.holdout)):
        groups.add_row(
            name, str(g.entrants), str(g.converted), str(g.orders), yuan(g.gmv_fen),
            yuan(g.coupon_fen), yuan(g.message_fen),
        )  # fmt: skip
    console.print(groups)
    diffs = Table(title="treatment against holdout (95% intervals)")
    for col in ("", "value", "95% interval", ""):
        diffs.add_column(col, justify="right" if col else "left")
    for row in difference_rows(j):
        diffs.add_row(row.label, row.value, row.interval, row.verdict)
    console.print(diffs)
    console.print(f"spend: {yuan(j.spend_fen)} (the treatment's coupons and messages)")
    console.print(roi_line(j), highlight=False, soft_wrap=True)
    split = split_line(money)
    if split is not None:
        style = "bold red" if money.sample_ratio and money.sample_ratio.mismatch else ""
        console.print(split, style=style, highlight=False)
    if money.steps:
        steps = Table(title="by send step (entrants who reached it)")
        for col in ("step", "treatment", "holdout", "conversion (points)", "GMV / entrant", "cost"):
            steps.add_column(col, justify="left" if col == "step" else "right")
        for s in money.steps:
            gmv = s.gmv_per_entrant_fen
            steps.add_row(
                s.label, str(s.treatment.entrants), str(s.holdout.entrants),
                f"{points(s.conversion.value)} {interval(s.conversion, points)}".strip(),
                f"{signed_yuan(gmv.value)} {interval(gmv, signed_yuan)}".strip(),
                yuan(s.spend_fen),
            )  # fmt: skip
        console.print(steps)
