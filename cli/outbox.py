"""``lifecycle outbox``: what the outbox channel recorded instead of sending."""

from __future__ import annotations

import argparse

from cli.common import Commands, command, session_factory
from config import Settings


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from store.outbox import list_outbox

    with session_factory(settings)() as session:
        rows = list_outbox(session, limit=args.limit)
    if not rows:
        print("the outbox is empty")
    for m in reversed(rows):
        head = f"#{m.id} {m.created_at:%Y-%m-%d %H:%M} {m.channel:5} → {m.recipient}"
        print(head + (f"  [{m.subject}]" if m.subject else ""))
        print("    " + m.body.replace("\n", "\n    ")[:400])
    return 0


def register(sub: Commands) -> None:
    o = command(
        sub,
        "outbox",
        cmd_outbox,
        "list what the outbox channel recorded",
        "lifecycle outbox --limit 5",
    )
    o.add_argument("--limit", type=int, default=20)
