"""Starting a journey's sweep by hand (the CLI): the tick it is due for at an instant, and the
sweep's progress until it ends. :class:`triggers.scheduler.SweepScheduler` does the starting,
so a sweep started by hand and one the scheduler starts are the same sweep, run once."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import datetime

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from temporalio.client import Client

from journeys.models import Schedule
from journeys.schedule import ScheduleError, cron_trigger, last_tick
from store.db import SessionFactory
from store.journeys import latest_version, spec_of
from workflows.sweep import SweepWorkflow


class SweepError(ValueError):
    """A sweep that cannot be started; the message says why."""


@dataclass(frozen=True)
class DueSweep:
    """The sweep a schedule-triggered journey is due for: its schedule's latest tick."""

    schedule: Schedule
    tick: datetime


def due_sweep(factory: SessionFactory, *, journey_id: str, at: datetime) -> DueSweep:
    """The latest tick at or before ``at`` of ``journey_id``'s schedule.

    Raises:
        SweepError: the journey is not published, starts from events, or has no tick yet.
    """
    with factory() as session:
        row = latest_version(session, journey_id=journey_id)
        if row is None or row.status != "published":
            raise SweepError(f"journey {journey_id!r} is not published (lifecycle journeys list)")
        schedule = spec_of(row).trigger.schedule
    if schedule is None:
        raise SweepError(f"journey {journey_id!r} starts from events, not a schedule")
    try:
        tick = last_tick(cron_trigger(schedule), at)
    except ScheduleError as exc:
        raise SweepError(f"journey {journey_id!r}: {exc}") from None
    if tick is None:
        raise SweepError(f"{schedule.cron!r} had no tick before {at.isoformat()}")
    return DueSweep(schedule=schedule, tick=tick)


async def follow_sweep(client: Client, workflow_id: str, *, total: int) -> None:
    """A progress bar over the sweep's members until it ends, then what it did."""
    handle = client.get_workflow_handle_for(SweepWorkflow.run, workflow_id)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=not sys.stdout.isatty()) as bar:
        task = bar.add_task("entering", total=total)
        result = asyncio.ensure_future(handle.result())
        while not result.done():
            try:
                now = await handle.query(SweepWorkflow.progress)
                bar.update(task, completed=now.members)
            except Exception:  # noqa: S110 - between runs of continue-as-new; ask again
                pass
            await asyncio.wait([result], timeout=0.5)
        done = result.result()
        bar.update(task, completed=done.members)
    stopped = f", stopped: {done.stopped}" if done.stopped else ""
    print(f"{done.members} members, {done.entered} entered{stopped}")
