"""``lifecycle report`` (what journeys achieved) and ``lifecycle kpi`` (the growth plan's KPIs)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from cli.common import CliError, Commands, command, instant, session_factory
from config import Settings

REPORT_HELP = (
    "what journeys achieved: sends, skips by reason, conversions, lift over holdout, and\n"
    "money per entrant (orders, GMV, coupon and message cost; incremental margin, cost per\n"
    "incremental order, ROI) with 95% intervals and what is not significant yet. Priced by\n"
    "LIFECYCLE_SMS_COST_FEN_PER_SEGMENT (default 5 fen), LIFECYCLE_SMS_COST_FEN_BY_COUNTRY\n"
    "(JSON by E.164 prefix, e.g. '{\"+1\": 60}'), LIFECYCLE_EMAIL_COST_FEN (default 1),\n"
    "LIFECYCLE_PUSH_COST_FEN (default 0) and LIFECYCLE_MARGIN_RATE (default 0.25). The\n"
    "methods (Newcombe, BCa bootstrap, power, sample-ratio check) are in the README."
)

KPI_HELP = """\
the growth plan's KPIs, each per complete week or month between --since and --until, the
latest against its target (LIFECYCLE_KPI_TARGETS, JSON by key), each rate with its 95%
Wilson interval. Computed in SQL from the events the platform sends:

  a visit     a session_started event; an order: an order_placed event (userId set)
  signup      the user's first user_signed_up event
  periods     weeks from Monday 00:00, months from the 1st, in LIFECYCLE_DEFAULT_TIMEZONE
              (default Asia/Shanghai); only complete ones, and for cohorts only those
              whose every member's window has closed by --until

  order_conversion         of the week's visitors, the share who ordered that week
                           (target 3.5%)
  first_order_7d           of the week's signups, the share who ordered within 7 days
                           (168 h) of signing up (target 15%, our figure: the plan has none)
  retention_30d            of the week's signups, the share who visited 30-59 days after
                           signing up (target 30%); the cohort table shows weeks 1-8
  repurchase_90d / _365d   of the users who ordered in the 90 / 365 days before the
                           month's end, the share who ordered twice or more (365d: 40%)
  monthly_active_3_visits  of the month's visitors, the share with 3 or more visits (65%)
  gmv, average_order_value orders' value before their discounts (amount paid plus the
                           order's discount_fen, else an engine-issued coupon's discount,
                           as in `lifecycle report`) per week, and per order (no target
                           unless set)

then the program's lift: with a global control group (LIFECYCLE_GLOBAL_CONTROL_PERCENT of
users, sent no marketing message by any journey or broadcast), every user exposed to the
program against it, over --since (default: 90 days before --until): conversion, orders,
GMV and ROI per user, 30-day retention of signups and repurchase, each difference with its
95% interval, and a check that the control's share came out as configured."""


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from devstack.views import print_report
    from store.journeys import live_journeys
    from store.money import Costs
    from store.reports import journey_report

    since = instant(args.since, "--since") if args.since else None
    with session_factory(settings)() as session:
        ids = [args.journey] if args.journey else [r.journey_id for r in live_journeys(session)]
        costs = Costs.of(settings)
        reports = [journey_report(session, journey_id=j, since=since, costs=costs) for j in ids]
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
        return 0
    console = Console()
    for report in reports:
        print_report(report, console)
        console.print()
    return 0


def cmd_kpi(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from devstack.kpi_view import print_kpis, when
    from devstack.program_view import disabled_line, print_program
    from store.kpi import kpi_report
    from store.money import Costs
    from store.program import program_report

    until = instant(args.until, "--until") if args.until else datetime.now(UTC)
    since = instant(args.since, "--since") if args.since else None
    if since is not None and since >= until:
        raise CliError("--since must come before --until")
    percent = settings.global_control_percent
    with session_factory(settings)() as session:
        report = kpi_report(
            session,
            since=since,
            until=until,
            timezone=settings.default_timezone,
            targets=settings.kpi_targets,
        )
        program = (
            program_report(
                session,
                since=since,
                until=until,
                percent=percent,
                salt=settings.global_control_salt,
                costs=Costs.of(settings),
            )
            if percent > 0
            else None
        )
    if args.json:
        data = report.as_dict() | {"program": program.as_dict() if program else None}
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    # Piped or redirected, the lines keep their width instead of folding at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 132)
    print_kpis(report, console)
    console.print()
    if program is None:
        console.print(disabled_line(), highlight=False)
    else:
        span = f"{when(program.since, settings.default_timezone)} to "
        span += f"{when(program.until, settings.default_timezone)}"
        print_program(program, console, when=span)
    return 0


def register(sub: Commands) -> None:
    r = command(
        sub,
        "report",
        cmd_report,
        "what journeys achieved: sends, skips by reason, conversions, lift over holdout",
        "lifecycle report new_user_coupon --since 2026-06-01 --json",
    )
    r.description = REPORT_HELP
    r.add_argument("journey", nargs="?", help="one journey (default: all)")
    r.add_argument("--since", help="only enrollments from this date or instant on")
    r.add_argument("--json", action="store_true", help="machine-readable output")

    k = command(
        sub,
        "kpi",
        cmd_kpi,
        "the growth plan's KPIs per week or month against their targets, with Wilson intervals",
        "lifecycle kpi --since 2026-01-01 --json",
    )
    k.description = KPI_HELP
    k.add_argument("--since", help="from this date or instant on (default: 26 weeks before)")
    k.add_argument("--until", help="up to this date or instant (default: now)")
    k.add_argument("--json", action="store_true", help="machine-readable output")
