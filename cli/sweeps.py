"""Scheduled sweeps: ``lifecycle scheduler``, the process that starts one per tick of each
schedule-triggered journey, and ``lifecycle sweeps`` to list them or start one by hand."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from cli.common import CliError, Commands, actions, command, instant, session_factory
from config import Settings


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    import compose
    from triggers.scheduler import run_scheduler

    async def run() -> None:
        # Sessions first, as before: a bad database URL is named before Temporal is called.
        factory = compose.session_factory(settings)
        client = await compose.temporal_client(settings)
        await run_scheduler(settings, factory=factory, client=client)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.sweeps import recent_ticks

    with session_factory(settings)() as session:
        ticks = recent_ticks(session, journey_id=args.journey, limit=args.limit)
    if not ticks:
        print("no sweeps yet")
        return 0
    print(f"{'sweep':<48} {'members':>8} {'entered':>8}  state")
    for t in ticks:
        if t.error:
            state = f"failed: {t.error}"
        elif t.finished_at:
            state = "finished"
        else:
            state = "running" if t.started_at else "claimed, not started"
        if t.audience_version is not None:
            state += f" (saved audience v{t.audience_version})"
        print(f"{t.workflow_id:<48} {t.members:>8} {t.entered:>8}  {state}")
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    import compose
    from audiences.rules import AudienceError
    from audiences.swept import swept_audience
    from journeys.schedule import tick_label
    from triggers.scheduler import SweepScheduler
    from triggers.sweep_by_hand import SweepError, due_sweep, follow_sweep
    from workflows.ids import sweep_workflow_id

    at = instant(args.at, "--at") if args.at else datetime.now(UTC)
    factory = session_factory(settings)
    try:
        due = due_sweep(factory, journey_id=args.journey, at=at)
    except SweepError as exc:
        raise CliError(str(exc)) from None
    wid = sweep_workflow_id(args.journey, due.tick)

    async def start() -> None:
        client = await compose.temporal_client(settings)
        scheduler = SweepScheduler(
            factory=factory,
            client=client,
            task_queue=settings.task_queue,
            page_size=settings.sweep_page_size,
        )
        started = await scheduler.start_sweep(args.journey, due.tick)
        print(f"{wid}: {'started' if started else 'already started'} (tick {tick_label(due.tick)})")
        if args.wait:
            with factory() as session:
                try:
                    swept = swept_audience(session, due.schedule)
                except AudienceError as exc:  # the sweep itself fails on it too
                    raise CliError(f"{args.journey}: {exc}") from None
                total = swept.audience.count(session, now=due.tick)
            await follow_sweep(client, wid, total=total)

    asyncio.run(start())
    return 0


def register(sub: Commands) -> None:
    command(
        sub,
        "scheduler",
        cmd_scheduler,
        "run the sweep scheduler: one sweep per tick of each schedule-triggered journey",
        "lifecycle scheduler   # as many replicas as you like; each tick sweeps once",
    )
    group = command(
        sub,
        "sweeps",
        None,
        "list scheduled sweeps, or start one by hand",
        "lifecycle sweeps list --journey dormancy_wakeup",
    )
    ssub = actions(group, "sweeps_command")
    sl = command(
        ssub,
        "list",
        cmd_list,
        "the newest sweeps: members found, runs entered, state",
        "lifecycle sweeps list --journey dormancy_wakeup --limit 5",
    )
    sl.add_argument("--journey", help="one journey only")
    sl.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    sr = command(
        ssub,
        "run",
        cmd_run,
        "start the sweep of a journey's latest tick at or before --at (default now), "
        "unless it already ran; a worker does the sweeping",
        "lifecycle sweeps run dormancy_wakeup --at 2026-11-11T10:00:00+08:00 --wait",
    )
    sr.add_argument("journey")
    sr.add_argument("--at", help="ISO-8601 instant (default: now)")
    sr.add_argument("--wait", action="store_true", help="show progress until the sweep ends")
