"""A simulation's result on the terminal: funnels, the send-hour histogram, a sample story."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from activities.policy import QuietHours
from simulate.results import JourneyFunnel, SendHours, SimulationResult, StepCounts
from simulate.runner import Progress
from store.reports import set_aside_line

BAR = 40


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


def _skipped(counts: StepCounts) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.skipped.items())) or "0"


def print_funnel(funnel: JourneyFunnel, console: Console) -> None:
    """Entered → each send step (sent, skipped by reason) → converted, by group."""
    goal = f" — goal: {funnel.goal}" if funnel.goal else ""
    table = Table(title=f"{escape(funnel.name)} ({funnel.journey_id}){escape(goal)}")
    table.add_column("")
    for group in ("treatment", "holdout"):
        table.add_column(group, justify="right")
    table.add_row("entered", *(str(funnel.entered[g]) for g in ("treatment", "holdout")))
    for step in funnel.steps:
        cells = [step.treatment, step.holdout]
        table.add_row(
            f"{step.step} · {step.channel}: sent / reached",
            *(f"{c.sent} / {c.reached}" for c in cells),
        )
        table.add_row("    skipped", *(_skipped(c) for c in cells))
        if any(c.failed or c.pending for c in cells):
            table.add_row("    failed / undecided", *(f"{c.failed} / {c.pending}" for c in cells))
    table.add_row(
        "converted",
        *(f"{funnel.converted[g]} ({funnel.rate[g]:.1%})" for g in ("treatment", "holdout")),
    )
    console.print(table)
    lift = funnel.lift
    unsure = " (not significant)" if lift.significant is False else ""
    console.print(
        f"lift: {_pct(lift.absolute)} points absolute, {_pct(lift.relative)} relative{unsure} · "
        f"exits: {', '.join(f'{k} {v}' for k, v in funnel.exits.items()) or 'none'}"
        + (
            f" · coupons: {funnel.coupons_issued} issued, {funnel.coupons_redeemed} redeemed"
            if funnel.coupons_issued
            else ""
        )
    )
    if funnel.set_aside:
        console.print(set_aside_line(funnel.set_aside), highlight=False)


def print_send_hours(hours: SendHours, console: Console) -> None:
    """A text histogram of sends by the user's local hour; quiet hours marked."""
    quiet = QuietHours.parse(hours.quiet_hours) if hours.quiet_hours else None
    note = f" (quiet hours {hours.quiet_hours} marked ·)" if quiet else " (quiet hours off)"
    console.print(f"[bold]Sends by the user's local hour[/]{note}")
    top = max(hours.by_hour) or 1
    for hour, count in enumerate(hours.by_hour):
        mark = "·" if quiet is not None and quiet.contains(time(hour, 30)) else " "
        bar = "█" * round(BAR * count / top)
        console.print(f"  {hour:02d} {mark} {bar:<{BAR}} {count}", highlight=False)
    console.print(f"marketing sends inside quiet hours: {hours.marketing_in_quiet_hours}")


def print_result(result: SimulationResult, console: Console) -> None:
    console.print(
        f"[bold]lifecycle simulate[/]: {result.users} users, {result.days} days from "
        f"{result.start:%Y-%m-%d} (UTC), seed {result.seed} · {result.seconds:.1f} s"
    )
    events = ", ".join(f"{n} {name}" for name, n in result.events.items())
    console.print(f"calls posted to the API: {events}", highlight=False)
    for funnel in result.journeys:
        console.print()
        print_funnel(funnel, console)
        trigger = funnel.trigger_event
        if not sum(funnel.entered.values()) and trigger and trigger not in result.events:
            console.print(
                f"nobody entered: it starts on {trigger}, which the simulated users "
                f"never send (they send {', '.join(sorted(result.events))})",
                highlight=False,
            )
    console.print()
    print_send_hours(result.send_hours, console)
    sample = result.sample
    if sample is None:
        return
    console.print()
    about = ", ".join(x for x in (sample.timezone, sample.locale, sample.member_tier) if x)
    console.print(
        f"[bold]Timeline of {sample.user_id}[/] ({sample.group} in {sample.journey_id}; {about}; "
        f"reachable by {', '.join(sample.reachable) or 'nothing'}) — day, local time:"
    )
    for line in sample.timeline:
        console.print(
            f"  day {line.day:2d} {line.local_time}  {line.kind:8}  {escape(line.text)}",
            highlight=False,
        )


@contextmanager
def progress_bar(console: Console, days: int, *, enabled: bool = True) -> Iterator[Progress | None]:
    """A rich progress bar fed by the simulation's day-by-day callback (None if not
    ``enabled``, e.g. when the output is not a terminal)."""
    if not enabled:
        yield None
        return
    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("day {task.completed:.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[note]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("simulating", total=days, note="")

        def update(day: int, total: int, phase: str, running: int) -> None:
            if phase == "entering":
                bar.update(task, completed=day, note=f"{running} runs open")
            else:
                bar.update(
                    task,
                    description="finishing open runs",
                    completed=total,
                    note=f"day {day}, {running} runs open",
                )

        yield update
