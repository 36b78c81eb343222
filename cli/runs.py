"""``lifecycle runs``: who is where in a journey (per step, waiting until when), and ejecting
runs by user or everyone at a step."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cli.common import CliError, Commands, actions, command, session_factory
from config import Settings

if TYPE_CHECKING:
    from enrollment.runs_admin import Run, RunsAdmin, StepRuns, Whereabouts

WHERE_HELP = (
    "how many open runs of a journey wait at each step now, and until when; with --step,\n"
    "who they are. Each run is asked where it is (32 at a time); past --sample open runs a\n"
    "random sample is asked and the counts are scaled to the whole (marked ≈)."
)
EJECT_HELP = (
    "end runs of a journey by hand: the named users' open runs, or everyone at a step.\n"
    "Each run leaves as for an exit event (a held send is given up, never sent), its\n"
    "enrollment is recorded exited as `ejected`, and the user's timeline says who ejected\n"
    "it and why (a journey_ejected event)."
)


async def _admin(settings: Settings) -> RunsAdmin:
    import compose
    from enrollment.runs_admin import RunsAdmin

    try:
        client = await compose.temporal_client(settings)
    except RuntimeError as exc:
        raise CliError(f"cannot reach Temporal at {settings.temporal_address}: {exc}") from None
    return RunsAdmin(factory=session_factory(settings), client=client)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password file
        return "unknown"


def _at(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def _waits(run: Run) -> str:
    p = run.position
    if p is None:
        return "did not answer"
    if not p.waiting:
        return "running the step"
    what = f"event {p.event}" if p.event else p.waiting
    return f"{what} until {_at(p.until)} UTC"


def _run_json(run: Run) -> dict[str, Any]:
    p = run.position
    return {
        "user_id": run.user_id,
        "entry_key": run.entry_key,
        "workflow_id": run.workflow_id,
        "answered": p is not None,
        "waiting": p.waiting if p else None,
        "event": (p.event or None) if p else None,
        "until": p.until.isoformat() if p and p.until else None,
        "since": p.since.isoformat() if p and p.since else None,
    }


def _step_json(s: StepRuns, *, users: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "step": s.step,
        "count": s.count,
        "estimate": s.estimate,
        "earliest_until": s.earliest.isoformat() if s.earliest else None,
        "latest_until": s.latest.isoformat() if s.latest else None,
    }
    if users:
        out["users"] = [_run_json(r) for r in s.runs]
    return out


def _print_where(found: Whereabouts, step: str | None) -> None:
    approx = "≈" if found.sampled else ""
    if found.sampled:
        print(
            f"{found.journey_id}: {found.open:,} open runs; a random sample of {found.asked:,} "
            "asked, counts scaled to all (≈)"
        )
    else:
        print(f"{found.journey_id}: {found.open:,} open run(s)")
    shown = [found.at(step)] if step is not None else found.steps
    print(f"{'step':24} {'waiting':>9}  until (earliest … latest, UTC)")
    for s in shown:
        until = f"{_at(s.earliest)} … {_at(s.latest)}" if s.earliest else "-"
        print(f"{s.step:24} {approx + format(s.estimate, ','):>9}  {until}")
    if step is not None:
        for run in found.at(step).runs:
            key = f" [{run.entry_key}]" if run.entry_key else ""
            print(f"  {run.user_id}{key}  {_waits(run)}")


def cmd_where(settings: Settings, args: argparse.Namespace) -> int:
    from enrollment.runs_admin import PLACES, UnknownJourney, journey_steps

    async def go() -> Whereabouts:
        return await (await _admin(settings)).where(args.journey, sample=args.sample)

    try:
        known = journey_steps(session_factory(settings), args.journey)
    except UnknownJourney as exc:
        raise CliError(str(exc)) from None
    if args.step is not None and args.step not in {*known, *PLACES}:
        raise CliError(f"journey {args.journey!r} has no step {args.step!r}")
    if args.sample < 1:
        raise CliError("--sample must be at least 1")
    found = asyncio.run(go())
    if args.json:
        steps = [found.at(args.step)] if args.step is not None else found.steps
        doc = {
            "journey_id": found.journey_id,
            "open": found.open,
            "asked": found.asked,
            "sampled": found.sampled,
            "steps": [_step_json(s, users=True) for s in steps],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    _print_where(found, args.step)
    return 0


def cmd_eject(settings: Settings, args: argparse.Namespace) -> int:
    from enrollment.runs_admin import Ejection, UnknownJourney, UnknownStep

    if args.user and args.step:
        raise CliError("give --user or --step, not both")
    if not args.user and not args.step:
        raise CliError("say whom to eject: --user U (repeatable) or --step S --all")
    if args.step and not args.all:
        raise CliError(f"--step ejects everyone at {args.step!r}: add --all to confirm")
    if not args.reason.strip():
        raise CliError("--reason is empty: say why, it is recorded")

    actor = args.actor or _os_user()

    async def go() -> Ejection:
        admin = await _admin(settings)
        return await admin.eject(
            args.journey,
            actor=actor,
            reason=args.reason.strip(),
            now=datetime.now(UTC),
            user_ids=args.user,
            step=args.step,
        )

    try:
        done = asyncio.run(go())
    except (UnknownJourney, UnknownStep) as exc:
        raise CliError(str(exc)) from None
    for run, why in done.failed:
        print(f"lifecycle: {run.user_id}'s run was not ejected ({why})", file=sys.stderr)
    if not done.runs:
        if done.failed:
            raise CliError(f"nothing ejected: Temporal refused every run of {args.journey}")
        whom = f"at {args.step}" if args.step else "for " + ", ".join(done.not_open)
        raise CliError(f"nothing ejected: no open run of {args.journey} {whom}")
    for user in done.not_open:
        print(f"lifecycle: {user} has no open run in {args.journey}", file=sys.stderr)
    print(f"ejected {len(done.runs)} run(s) of {args.journey} by {actor}: {args.reason.strip()}")
    return 0


def register(sub: Commands) -> None:
    group = command(
        sub,
        "runs",
        None,
        "who is at which step of a journey, waiting until when; eject runs",
        "lifecycle runs where new_user_coupon",
    )
    rsub = actions(group, "runs_command")
    w = command(
        rsub,
        "where",
        cmd_where,
        "how many open runs wait at each step now, until when; who (--step)",
        "lifecycle runs where new_user_coupon\n"
        "  lifecycle runs where new_user_coupon --step wait_day2      who waits there\n"
        "  lifecycle runs where cart_abandonment --json",
    )
    w.description = WHERE_HELP
    w.add_argument("journey", help="the journey's id")
    w.add_argument("--step", help="list the users at this step (a step id, or '(goal window)')")
    w.add_argument("--json", action="store_true", help="machine-readable, users included")
    w.add_argument(
        "--sample",
        type=int,
        default=2000,
        metavar="N",
        help="ask at most N runs, a random sample past that (default 2000)",
    )
    e = command(
        rsub,
        "eject",
        cmd_eject,
        "end runs by hand: named users', or everyone at a step; who and why recorded",
        "lifecycle runs eject new_user_coupon --user u1 --user u2 --reason 'asked to stop'\n"
        "  lifecycle runs eject cart_abandonment --step reminder_push --all "
        "--reason 'wrong price in the push'",
    )
    e.description = EJECT_HELP
    e.add_argument("journey", help="the journey's id")
    e.add_argument(
        "--user", action="append", metavar="U", help="a user whose open runs end (repeatable)"
    )
    e.add_argument("--step", help="everyone at this step (with --all)")
    e.add_argument("--all", action="store_true", help="confirm: everyone at --step")
    e.add_argument("--reason", required=True, help="why, recorded with the ejection")
    e.add_argument("--actor", help="who ejects, recorded with it (default: the OS user)")
