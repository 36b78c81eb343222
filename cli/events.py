"""``lifecycle events``: the dead-letter table, calls the API refused and events the router
parked, and replaying one after a fix."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cli.common import CliError, Commands, actions, command, session_factory
from config import Settings

if TYPE_CHECKING:
    from store.models import RejectedEvent


def _since_arg(text: str | None, *, now: datetime) -> datetime | None:
    """``--since``: an ISO-8601 date or instant, or an age such as ``24h`` or ``7d``."""
    if not text:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1:] in units:
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--since {text!r} is not a date, an instant or an age like 24h") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def _as_json(r: RejectedEvent) -> dict[str, Any]:
    return {
        "id": r.id,
        "stage": r.stage,
        "source": r.source,
        "receivedAt": r.received_at.isoformat(),
        "messageId": r.message_id,
        "field": r.field,
        "reason": r.reason,
        "attempts": r.attempts,
        "eventId": r.event_id,
        "raw": r.raw,
        "replayedAt": r.replayed_at.isoformat() if r.replayed_at else None,
        "replayResult": r.replay_result,
    }


def cmd_rejected(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from store.rejected import list_rejected

    since = _since_arg(args.since, now=datetime.now(UTC))
    with session_factory(settings)() as session:
        rows = list_rejected(
            session, since=since, stage=args.stage, pending_only=args.pending, limit=args.limit
        )
    if args.json:
        print(json.dumps([_as_json(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no rejected events" + (" since then" if since else ""))
        return 0
    for r in rows:
        state = f"replayed: {r.replay_result}" if r.replayed_at else "waiting"
        where = f" field {r.field}" if r.field else ""
        print(
            f"#{r.id} {r.received_at:%Y-%m-%d %H:%M:%S} UTC  {r.stage:6} {r.source}  "
            f"messageId {r.message_id or '-'}{where}  [{state}]"
        )
        print(f"    {r.reason}")
        print(f"    {r.raw[:300]}{'...' if len(r.raw) > 300 else ''}")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from triggers.replay import ReplayError, replay
    from triggers.segment import limits_of

    corrected = None
    if args.with_file:
        source = sys.stdin if args.with_file == "-" else open(args.with_file, encoding="utf-8")  # noqa: SIM115
        with source:
            corrected = source.read()
    try:
        done = replay(
            session_factory(settings),
            rejected_id=args.id,
            limits=limits_of(settings),
            now=datetime.now(UTC),
            corrected=corrected,
        )
    except ReplayError as exc:
        raise CliError(str(exc)) from None
    print(f"#{args.id}: {done.result}")
    return 0


def register(sub: Commands) -> None:
    group = command(
        sub,
        "events",
        None,
        "the dead-letter table: calls the API refused, events the router parked",
        "lifecycle events rejected --since 24h",
    )
    esub = actions(group, "events_command")
    er = command(
        esub,
        "rejected",
        cmd_rejected,
        "list refused calls (raw, with field and reason) and parked events, newest first",
        "lifecycle events rejected --since 24h\n"
        "  lifecycle events rejected --stage route --pending --json",
    )
    er.add_argument("--since", help="from this date, instant, or age (24h, 7d) on")
    er.add_argument("--stage", choices=["ingest", "route"], help="refused calls or parked events")
    er.add_argument("--pending", action="store_true", help="only those not replayed yet")
    er.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    er.add_argument("--json", action="store_true", help="machine-readable output, raw included")
    rp = command(
        esub,
        "replay",
        cmd_replay,
        "try one again after a fix: a refused call is judged under today's limits (or from a "
        "corrected copy) and stored; a parked event is routed again by the worker",
        "lifecycle events replay 12\n  lifecycle events replay 12 --with fixed.json",
    )
    rp.add_argument("id", type=int, help="the id `lifecycle events rejected` shows (#12)")
    rp.add_argument(
        "--with",
        dest="with_file",
        metavar="FILE",
        help="a corrected copy of the refused call, as JSON ('-' reads stdin)",
    )
