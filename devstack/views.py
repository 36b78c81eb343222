"""Terminal views shared by the CLI and the demo (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from devstack.money_view import print_money
from store.reports import JourneyReport


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}" if value < 0 or value > 0 else "0.0%"


def _span(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f" [{ci[0]:+.1%}, {ci[1]:+.1%}]"


def print_report(report: JourneyReport, console: Console, *, goal: str = "") -> None:
    """Steps by channel, then conversion for treatment vs holdout with the lift."""
    steps = Table(title=f"{report.journey_id}: sends by step and channel")
    for col in ("step", "channel", "sent", "delivered", "failed", "skipped (reason)"):
        steps.add_column(col, justify="left" if col in ("step", "channel") else "right")
    for row in report.steps:
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(row.skipped.items())) or "0"
        steps.add_row(
            row.step, row.channel, str(row.sent), str(row.delivered), str(row.failed), skipped
        )
    console.print(steps)

    groups = Table(title=f"Conversion{': ' + goal if goal else ''}")
    for col in ("group", "entered", "converted", "rate"):
        groups.add_column(col, justify="left" if col == "group" else "right")
    for group in ("treatment", "holdout"):
        groups.add_row(
            group,
            str(report.entered.get(group, 0)),
            str(report.converted.get(group, 0)),
            f"{report.rate(group):.1%}",
        )
    console.print(groups)
    if report.set_aside:
        console.print(report.set_aside_line)
    if report.credited or report.credited_elsewhere:
        console.print(
            f"credit (first touch): {report.credited} of the treatment's conversions here, "
            f"{report.credited_elsewhere} to a journey that reached the user first"
        )
    lift = report.lift
    verdict = "" if lift.significant is None else "" if lift.significant else " — not significant"
    console.print(
        f"lift: {_pct(lift.absolute)} points{_span(lift.absolute_ci)} absolute, "
        f"{_pct(lift.relative)}{_span(lift.relative_ci)} relative (95% CI){verdict}"
    )
    if report.coupons_issued:
        rate = report.coupons_redeemed / report.coupons_issued
        console.print(
            f"coupons: {report.coupons_issued} issued, {report.coupons_redeemed} redeemed "
            f"({rate:.1%})"
        )
    exits = ", ".join(f"{k} {v}" for k, v in sorted(report.exits.items())) or "none"
    console.print(f"entered {sum(report.entered.values()) + report.set_aside} · exits: {exits}")
    if report.money is not None:
        print_money(report.money, console)
