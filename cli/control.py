"""``lifecycle pause-all`` and ``resume-all``: hold every send at once, and release them."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from cli.common import Commands, command, session_factory
from config import Settings


def cmd_pause_all(settings: Settings, args: argparse.Namespace) -> int:
    """Both commands: ``pause-all`` holds, ``resume-all`` releases."""
    from store.control import set_sends_paused
    from store.db import transaction

    paused = args.command == "pause-all"
    with transaction(session_factory(settings)) as session:
        set_sends_paused(session, paused=paused, now=datetime.now(UTC))
    if paused:
        print("all sends are held (not lost) until `lifecycle resume-all`")
    else:
        print("sends resumed; held messages go out at their next check (within the hour)")
    return 0


def register(sub: Commands) -> None:
    command(
        sub,
        "pause-all",
        cmd_pause_all,
        "hold every send of every journey at once (held, not lost)",
        "lifecycle pause-all",
    )
    command(
        sub, "resume-all", cmd_pause_all, "release sends held by pause-all", "lifecycle resume-all"
    )
