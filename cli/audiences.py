"""``lifecycle audiences``: check, count and preview audience rules."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cli.common import CliError, Commands, actions, command, session_factory
from config import Settings

if TYPE_CHECKING:
    from audiences.audience import Audience


def _audience(settings: Settings, spec: str) -> Audience:
    """An audience from a file path, a shipped or saved audience's name, or an inline rule.

    The database is read only for a name that is neither a file nor a shipped audience.
    """
    from audiences.audience import (
        ID_PATTERN,
        load_audience,
        parse_audience_text,
        shipped_audiences,
    )
    from audiences.rules import AudienceError
    from audiences.saved import named_audience

    try:
        if Path(spec).is_file():
            return load_audience(spec)
        shipped = shipped_audiences()
        if spec in shipped:
            return shipped[spec]
        if ID_PATTERN.match(spec):
            with session_factory(settings)() as session:
                saved = named_audience(session, spec)
            if saved is not None:
                return saved
        return parse_audience_text(spec)
    except AudienceError as exc:
        raise CliError(str(exc)) from None


def _now(args: argparse.Namespace) -> datetime:
    if not args.now:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(args.now)
    except ValueError:
        raise CliError(f"--now {args.now!r} is not an ISO-8601 instant") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    from audiences.describe import describe

    audience = _audience(settings, args.audience)
    print(f"{audience.id}: ok — {describe(audience.rule)}")
    return 0


def cmd_count(settings: Settings, args: argparse.Namespace) -> int:
    audience = _audience(settings, args.audience)
    with session_factory(settings)() as session:
        print(audience.count(session, now=_now(args)))
    return 0


def cmd_preview(settings: Settings, args: argparse.Namespace) -> int:
    audience = _audience(settings, args.audience)
    now = _now(args)
    with session_factory(settings)() as session:
        total = audience.count(session, now=now)
        sample = audience.members(session, now=now, limit=args.limit)
        why = audience.explain(session, user_ids=sample, now=now)
    print(f"{audience.name}: {total} member(s) at {now:%Y-%m-%d %H:%M} UTC")
    for user_id in sample:
        print(f"  {user_id}")
        for text, held in why.get(user_id, []):
            print(f"      {'✓' if held else '✗'} {text}")
    return 0


def register(sub: Commands) -> None:
    group = command(
        sub,
        "audiences",
        None,
        "check, count and preview audience rules",
        "lifecycle audiences count dormant_30d",
    )
    asub = actions(group, "audiences_command")
    for name, fn, text, example in (
        (
            "validate",
            cmd_validate,
            "check a rule",
            "lifecycle audiences validate audiences/high_value.yaml",
        ),
        (
            "count",
            cmd_count,
            "count the members now",
            "lifecycle audiences count 'last_seen: {not_within: 30d}'",
        ),
        (
            "preview",
            cmd_preview,
            "show a sample of members and why each matched",
            "lifecycle audiences preview mother_and_baby --limit 5",
        ),
    ):
        a = command(asub, name, fn, text, example)
        a.add_argument(
            "audience",
            help="a file, a shipped or saved audience's name, or an inline YAML/JSON rule",
        )
        a.add_argument("--now", help="evaluate at this ISO-8601 instant (default: now)")
        if name == "preview":
            a.add_argument("--limit", type=int, default=10)
