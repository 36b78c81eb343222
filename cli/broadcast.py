"""``lifecycle broadcast``: one template to a whole audience; start, watch, pause, resume,
cancel, and review its money against its holdout. The work is :mod:`triggers.broadcasts`'
and :mod:`store.broadcast_money`'s; these handlers parse and print."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import kinds
from cli.common import CliError, Commands, actions, command, renderer, session_factory
from config import Settings

if TYPE_CHECKING:
    from temporalio.client import Client

    from store.broadcast_money import BroadcastMoney


def _broadcast_id(text: str) -> int:
    if not text.isdigit():
        raise CliError(f"broadcast id {text!r}: a number, as `lifecycle broadcast list` shows")
    return int(text)


async def _client(settings: Settings) -> Client:
    import compose

    try:
        return await compose.temporal_client(settings)
    except RuntimeError as exc:
        raise CliError(f"cannot reach Temporal at {settings.temporal_address}: {exc}") from None


def cmd_start(settings: Settings, args: argparse.Namespace) -> int:
    from triggers.broadcasts import BroadcastError, follow, plan_broadcast, start_broadcast

    now = datetime.now(UTC)
    factory = session_factory(settings)
    try:
        plan = plan_broadcast(
            renderer(settings),
            audience=args.audience,
            template=args.template,
            channel=args.channel,
            at=args.at,
            rate=args.rate,
            name=args.name,
            topic=args.topic,
            now=now,
            holdout=args.holdout,
            sessions=factory,
        )
    except BroadcastError as exc:
        raise CliError(str(exc)) from None
    with factory() as session:
        total = plan.audience.count(session, now=now)

    async def go() -> int:
        client = await _client(settings)
        broadcast_id = await start_broadcast(
            client,
            factory,
            plan,
            task_queue=settings.task_queue,
            now=now,
            channel_rate=settings.broadcast_rate_for(plan.channel),
        )
        when = "now" if plan.send_at <= now else f"at {plan.send_at:%Y-%m-%d %H:%M}Z"
        held = f", {plan.holdout:g}% held out" if plan.holdout else ""
        print(
            f"broadcast {broadcast_id} ({plan.name}): {total} in {plan.audience.id}{held}, "
            f"sending {when}"
        )
        if args.no_wait or plan.send_at > now + timedelta(minutes=1):
            print(f"follow it with: lifecycle broadcast status {broadcast_id} --follow")
        else:
            await follow(client, broadcast_id, total=total)
        return 0

    return asyncio.run(go())


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from audiences.audience import audience_from_data
    from devstack.broadcast_view import ledger_line
    from journeys.durations import parse_duration
    from store.broadcast_money import broadcast_money
    from store.broadcasts import FINAL_STATUSES, message_counts
    from store.money import Costs
    from triggers.broadcasts import BroadcastError, follow, get_broadcast, live_progress, summary

    broadcast_id = _broadcast_id(args.broadcast_id)
    try:
        window = parse_duration(args.window)
    except ValueError as exc:
        raise CliError(f"--window {args.window!r}: {exc}") from None
    factory = session_factory(settings)
    try:
        row = get_broadcast(factory, broadcast_id)
    except BroadcastError as exc:
        raise CliError(str(exc)) from None
    print(
        f"broadcast {row.id} ({row.name}): {row.template} by {row.channel} to {row.audience_source}"
    )

    async def go() -> None:
        client = await _client(settings)
        progress = await live_progress(client, broadcast_id)
        if progress is not None and args.follow:
            with factory() as session:  # the bar's total: the audience as it is now
                audience = audience_from_data(row.audience, source=f"broadcast {row.id}")
                total = audience.count(session, now=datetime.now(UTC))
            await follow(client, broadcast_id, total=total)
        elif progress is not None:
            print(summary(progress))

    if row.status not in FINAL_STATUSES:
        asyncio.run(go())
    with factory() as session:
        row = get_broadcast(factory, broadcast_id)
        counts = message_counts(session, broadcast_id=broadcast_id)
        review = broadcast_money(
            session,
            broadcast_id=broadcast_id,
            costs=Costs.of(settings),
            now=datetime.now(UTC),
            window=window,
        )
    print(ledger_line(row, counts))
    if counts:
        print_review(review)
    return 0


def print_review(review: BroadcastMoney) -> None:
    """The broadcast's money: its recipients against its holdout once the attribution window
    has closed (provisional before), or its attributed orders when nobody was held out."""
    from rich.console import Console

    from devstack.broadcast_view import review_lines
    from devstack.money_view import print_money

    for line in review_lines(review):
        print(line)
    if review.has_holdout:
        print_money(review.report, Console(width=None if sys.stdout.isatty() else 132))


def cmd_signal(settings: Settings, args: argparse.Namespace) -> int:
    """``pause``, ``resume`` and ``cancel``: the action's name is the signal's."""
    from triggers.broadcasts import BroadcastError, get_broadcast, signal_broadcast

    broadcast_id = _broadcast_id(args.broadcast_id)
    signal = args.broadcast_command

    async def go() -> None:
        row = get_broadcast(session_factory(settings), broadcast_id)
        await signal_broadcast(await _client(settings), row, signal)

    try:
        asyncio.run(go())
    except BroadcastError as exc:
        raise CliError(str(exc)) from None
    print(f"broadcast {broadcast_id}: {signal} sent")
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    from devstack.broadcast_view import list_line
    from store.broadcasts import list_broadcasts

    with session_factory(settings)() as session:
        rows = list_broadcasts(session, limit=args.limit)
    if not rows:
        print("no broadcasts yet: lifecycle broadcast start --help")
    for row in rows:
        print(list_line(row))
    return 0


def register(sub: Commands) -> None:
    group = command(
        sub,
        "broadcast",
        None,
        "send one template to a whole audience: start, watch, pause, resume, cancel",
        "lifecycle broadcast start --audience audiences/high_value.yaml "
        "--template sale_preheat_sms --channel sms --rate 50/s",
    )
    bsub = actions(group, "broadcast_command")
    bs = command(
        bsub,
        "start",
        cmd_start,
        "check and start a broadcast; shows its progress until done (unless --no-wait)",
        "lifecycle broadcast start --audience high_value --template sale_preheat_sms "
        "--channel sms --at 2026-06-15T20:00+08:00",
    )
    bs.add_argument(
        "--audience", required=True, help="a file, or a shipped or saved audience's name"
    )
    bs.add_argument("--template", required=True, help="a template written for --channel")
    bs.add_argument("--channel", required=True, help=kinds.one_of())
    bs.add_argument("--at", help="ISO-8601 instant with offset (default: now)")
    bs.add_argument("--rate", help="at most this many sends, e.g. 50/s or 3000/m")
    bs.add_argument("--name", help="a name for lists (default: template to audience)")
    bs.add_argument("--topic", choices=("marketing", "transactional"), default="marketing")
    bs.add_argument(
        "--holdout",
        metavar="PERCENT",
        help="hold out this percent of the audience (0-50, e.g. 5): sent nothing, for the "
        "money review `broadcast status` shows (default 0)",
    )
    bs.add_argument("--no-wait", action="store_true", help="start and return")
    bst = command(
        bsub,
        "status",
        cmd_status,
        "a broadcast's progress, ledger and money review",
        "lifecycle broadcast status 3 --follow",
    )
    bst.add_argument("broadcast_id")
    bst.add_argument("--follow", action="store_true", help="a progress bar until it ends")
    bst.add_argument(
        "--window",
        default="7d",
        help="the attribution window: orders this long after each recipient was reached "
        "(default 7d)",
    )
    for name, text in (
        ("pause", "send nothing more until resumed (held, not lost)"),
        ("resume", "let a paused broadcast send again"),
        ("cancel", "stop a broadcast; what was sent stays sent"),
    ):
        b = command(bsub, name, cmd_signal, text, f"lifecycle broadcast {name} 3")
        b.add_argument("broadcast_id")
    bl = command(bsub, "list", cmd_list, "recent broadcasts", "lifecycle broadcast list")
    bl.add_argument("--limit", type=int, default=20)
