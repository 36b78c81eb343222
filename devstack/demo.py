"""``lifecycle demo``: the four shipped journeys, simulated for a synthetic population.

It is ``lifecycle simulate`` with the shipped journeys (the new-user journey first, so the
sample timeline is a newcomer's) and a population small enough to finish in a minute or two:
events go in through the HTTP API (in process), the router starts one ``JourneyWorkflow`` per
entry on the Temporal time-skipping server, the worker sends through the outbox into
``<data_dir>/demo.db``. Weeks of simulated time take seconds a day.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from rich.console import Console

import compose
from config import Settings
from devstack.money_view import roi_line
from journeys.validate import load_journey, shipped_journey_files
from simulate.behaviour import Behaviour
from simulate.results import SimulationResult
from simulate.runner import run_simulation, simulation_settings
from simulate.view import print_result, progress_bar
from store.money import Costs, money_report

FIRST = "new_user_coupon"
DAYS = 14


@dataclass
class DemoResult:
    users: int
    entered: int
    converted: int
    sample_user: str | None
    simulation: SimulationResult
    roi: list[str] = field(default_factory=list)  # each journey's ROI line, as printed last


async def run_demo(
    settings: Settings,
    *,
    users: int = 150,
    days: int = DAYS,
    seed: int = 7,
    console: Console | None = None,
) -> DemoResult:
    """Simulate the shipped journeys and print the result; returns the headline numbers."""
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    paths = sorted(shipped_journey_files(), key=lambda p: (p.stem != FIRST, p.stem))
    journeys = [(load_journey(p), p.read_text()) for p in paths]
    console.print(
        f"[bold]lifecycle demo[/]: {users} synthetic users, {days} days, "
        f"{len(journeys)} journeys ({', '.join(p.stem for p in paths)})"
    )
    with progress_bar(console, days, enabled=console.is_terminal) as progress:
        result = await run_simulation(
            settings,
            journeys,
            users=users,
            days=days,
            seed=seed,
            behaviour=Behaviour(),
            database=settings.data_dir / "demo.db",
            progress=progress,
        )
    print_result(result, console)
    roi = roi_lines(settings, [j.id for j, _ in journeys])
    console.print()
    console.print("[bold]ROI per journey[/] (lifecycle report has the rest):")
    for line in roi:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    return DemoResult(
        users=users,
        entered=sum(sum(j.entered.values()) for j in result.journeys),
        converted=sum(sum(j.converted.values()) for j in result.journeys),
        sample_user=result.sample.user_id if result.sample else None,
        simulation=result,
        roi=roi,
    )


def roi_lines(settings: Settings, journey_ids: list[str]) -> list[str]:
    """Each journey's ROI line from the demo's database, with what it cannot show yet."""
    demo = simulation_settings(settings, f"sqlite:///{settings.data_dir / 'demo.db'}")
    engine = compose.engine(demo)
    try:
        with compose.session_factory(demo, on=engine)() as session:
            costs = Costs.of(settings)
            return [
                roi_line(money_report(session, journey_id=j, costs=costs).journey)
                for j in journey_ids
            ]
    finally:
        engine.dispose()
