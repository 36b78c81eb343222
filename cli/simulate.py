"""``lifecycle demo`` and ``lifecycle simulate``: journeys on a simulated clock, before they go
live."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cli.common import CliError, Commands, command
from cli.journeys import load_journeys
from config import Settings


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from devstack.demo import run_demo

    asyncio.run(run_demo(settings, users=args.users, days=args.days, seed=args.seed))
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from simulate.behaviour import BehaviourError, load_behaviour
    from simulate.runner import run_simulation
    from simulate.view import print_result, progress_bar

    if args.users < 1 or args.days < 1:
        raise CliError("--users and --days must be at least 1")
    try:
        behaviour = load_behaviour(args.behaviour)
    except BehaviourError as exc:
        raise CliError(str(exc)) from None
    journeys = [(journey, path.read_text()) for path, journey in load_journeys(args.files)]
    live = sys.stdout.isatty() and not args.json
    console = Console(width=None if live else 120)  # piped: wide enough for the funnels
    with progress_bar(console, args.days, enabled=live) as progress:
        result = asyncio.run(
            run_simulation(
                settings,
                journeys,
                users=args.users,
                days=args.days,
                seed=args.seed,
                behaviour=behaviour,
                database=Path(args.keep_db) if args.keep_db else None,
                progress=progress,
            )
        )
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print_result(result, console)
    return 0


def register(sub: Commands) -> None:
    demo = command(
        sub,
        "demo",
        cmd_demo,
        "simulate the four shipped journeys for synthetic users (lifecycle simulate)",
        "lifecycle demo --users 300 --seed 3",
    )
    demo.add_argument("--users", type=int, default=150, help="population size (default 150)")
    demo.add_argument("--days", type=int, default=14, help="days users enter for (default 14)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    sim = command(
        sub,
        "simulate",
        cmd_simulate,
        "run journeys for synthetic users on a simulated clock, before they go live: "
        "funnel, send hours, one user's timeline",
        "lifecycle simulate journeys/new_user_coupon.yaml --users 1000 --days 30 --seed 7\n"
        "  lifecycle simulate journeys/cart_abandonment.yaml --behaviour behaviour.yaml --json\n\n"
        "behaviour file (every field optional; defaults shown):\n"
        "  daily: {visit: 0.3, add_to_cart: 0.06, order: 0.03, coupon: 0.01}\n"
        "  lift: {factor: 2.0, days: 2}       # daily chances x factor after a message\n"
        "  population: {new: 0.4, dormant: 0.25, dormant_visit: 0.1}",
    )
    sim.add_argument(
        "files", nargs="*", metavar="JOURNEY.yaml", help="journeys (default: the shipped ones)"
    )
    sim.add_argument("--users", type=int, default=1000, help="population size (default 1000)")
    sim.add_argument(
        "--days", type=int, default=30, help="days users enter for (default 30); runs then end"
    )
    sim.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    sim.add_argument("--behaviour", metavar="FILE", help="YAML overriding the behaviour model")
    sim.add_argument("--json", action="store_true", help="machine-readable output")
    sim.add_argument("--keep-db", metavar="PATH", help="keep the simulation's SQLite file")
