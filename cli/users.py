"""``lifecycle users``: find a user, their timeline, and erasure."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from cli.common import CliError, Commands, actions, command, session_factory
from config import Settings


def cmd_forget(settings: Settings, args: argparse.Namespace) -> int:
    from store.db import transaction
    from store.erasure import forget_user

    with transaction(session_factory(settings)) as session:
        erasure = forget_user(session, user_id=args.user_id, now=datetime.now(UTC))
    if not erasure.found:
        raise CliError(f"nothing recorded for user {args.user_id!r}")
    ended = asyncio.run(_end_runs(settings, erasure.open_runs)) if erasure.open_runs else 0
    print(f"{args.user_id}: erased; {ended} running journey(s) ended")
    return 0


async def _end_runs(settings: Settings, workflow_ids: list[str]) -> int:
    from triggers.connecting import ConnectingRouter

    router = ConnectingRouter(settings, session_factory(settings))
    try:
        await router.end_runs(workflow_ids, reason="user erased")
    except Exception as exc:  # the profile is gone: left-over runs only skip their sends
        print(f"lifecycle: runs not ended ({exc}); they will skip every send", file=sys.stderr)
        return 0
    return len(workflow_ids)


def cmd_timeline(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from store.reports import user_timeline

    with session_factory(settings)() as session:
        entries = user_timeline(
            session, user_id=args.user_id, default_timezone=settings.default_timezone
        )
    if not entries:
        raise CliError(f"nothing recorded for user {args.user_id!r}")
    for e in entries:
        print(f"{e.at:%Y-%m-%d %H:%M:%S} UTC  {e.kind:8}  {e.text}")
        if args.properties and e.properties:
            print(f"{'':37}{json.dumps(e.properties, ensure_ascii=False, default=str)}")
    return 0


def cmd_find(settings: Settings, args: argparse.Namespace) -> int:
    from store.users import find_users
    from triggers.profiles import normalize_phone

    query = args.query.strip()
    with session_factory(settings)() as session:
        found = find_users(session, query=query, phone=normalize_phone(query))
    if not found:
        raise CliError(f"no user has the id, email or phone {query!r}")
    for u in found:
        seen = f"{u.last_seen_at:%Y-%m-%d %H:%M} UTC" if u.last_seen_at else "never"
        print(
            f"{u.id}  email {u.email or '-'}  phone {u.phone or '-'}  "
            f"first seen {u.created_at:%Y-%m-%d %H:%M} UTC  last seen {seen}"
        )
    return 0


def register(sub: Commands) -> None:
    group = command(
        sub,
        "users",
        None,
        "find a user by id, email or phone; their timeline",
        "lifecycle users timeline u1",
    )
    usub = actions(group, "users_command")
    f = command(
        usub,
        "forget",
        cmd_forget,
        "erase a user (PIPL/GDPR): profile, contacts, event properties; end their runs",
        "lifecycle users forget u1",
    )
    f.add_argument("user_id")
    t = command(
        usub,
        "timeline",
        cmd_timeline,
        "events, journeys, coupons, sends and skips of a user",
        "lifecycle users timeline u1 --properties",
    )
    t.add_argument("user_id")
    t.add_argument(
        "--properties", action="store_true", help="each event's properties, as JSON, beneath it"
    )
    fu = command(
        usub,
        "find",
        cmd_find,
        "users by id, email or phone (as typed: +86 138 0013 8000, 138-0013-8000)",
        "lifecycle users find alice@example.com",
    )
    fu.add_argument("query", help="a user id, an email address or a phone number")
