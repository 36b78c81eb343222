"""``lifecycle journeys``: validate, publish, list, show, pause and resume journeys (their
history, rollback and drafts are in :mod:`cli.journey_versions`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cli import journey_versions
from cli.common import CliError, Commands, actions, command, session_factory
from config import Settings

if TYPE_CHECKING:
    from journeys.models import Journey


def load_journeys(
    paths: list[str], *, saved_audiences: Collection[str] | None = None
) -> list[tuple[Path, Journey]]:
    """The journey files (default: the shipped ones), validated; warnings go to stderr and
    every file's errors come back together as one :class:`CliError`. ``saved_audiences``:
    the audiences saved in the database, which a schedule may name (publishing passes them)."""
    from journeys.validate import JourneyError, Problem, load_journey, shipped_journey_files
    from message_templates.render import TemplateRenderer

    files = [Path(p) for p in paths] or shipped_journey_files()
    renderer = TemplateRenderer()
    loaded, errors = [], []
    warnings: list[Problem] = []
    for path in files:
        try:
            journey = load_journey(
                path, renderer, warnings=warnings, saved_audiences=saved_audiences
            )
            loaded.append((path, journey))
        except JourneyError as exc:
            errors.append(str(exc))
    for warning in warnings:
        print(warning, file=sys.stderr)
    if errors:
        raise CliError("\n".join(errors))
    return loaded


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    for path, journey in load_journeys(args.files):
        print(f"{path}: ok ({journey.id}, {len(journey.steps)} steps)")
    return 0


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    from store.db import transaction
    from store.journeys import publish
    from store.saved_audiences import saved_names

    author = journey_versions.author_of(args)
    with transaction(session_factory(settings)) as session:
        loaded = load_journeys(args.files, saved_audiences=saved_names(session))
        for path, journey in loaded:
            row = publish(
                session,
                journey=journey,
                source=path.read_text(),
                now=datetime.now(UTC),
                note=args.note,
                published_by=author,
            )
            print(f"{journey.id}: version {row.version} published")
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.journeys import live_journeys

    with session_factory(settings)() as session:
        rows = live_journeys(session)
    if not rows:
        print("no journeys published yet: lifecycle journeys publish")
    for row in rows:
        when = f"{row.published_at:%Y-%m-%d %H:%M}"
        print(f"{row.journey_id:28} v{row.version:<4} {row.status:10} {when}")
    return 0


def _set_status(settings: Settings, journey_id: str, status: str) -> int:
    from store.db import transaction
    from store.journeys import set_status

    try:
        with transaction(session_factory(settings)) as session:
            row = set_status(session, journey_id=journey_id, status=status)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    print(f"{journey_id}: version {row.version} {status}")
    return 0


def cmd_pause(settings: Settings, args: argparse.Namespace) -> int:
    return _set_status(settings, args.journey_id, "paused")


def cmd_resume(settings: Settings, args: argparse.Namespace) -> int:
    return _set_status(settings, args.journey_id, "published")


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    from store.journey_runs import run_counts
    from store.journeys import latest_version

    with session_factory(settings)() as session:
        row = latest_version(session, journey_id=args.journey_id)
        if row is None:
            raise CliError(f"no journey {args.journey_id!r} has been published")
        runs = run_counts(session, journey_id=args.journey_id)
    done = ", ".join(f"{k} {v}" for k, v in sorted(runs.ended.items())) or "none"
    print(f"{row.journey_id} v{row.version} ({row.status}, published {row.published_at:%Y-%m-%d})")
    print(f"runs: {runs.running} running; ended: {done}")
    print()
    print(row.source.rstrip())
    return 0


def cmd_schema(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from journeys.models import Journey

    print(json.dumps(Journey.model_json_schema(by_alias=True), indent=2, ensure_ascii=False))
    return 0


def register(sub: Commands) -> None:
    group = command(
        sub, "journeys", None, "validate, publish and list journeys", "lifecycle journeys list"
    )
    jsub = actions(group, "journeys_command")
    v = command(
        jsub,
        "validate",
        cmd_validate,
        "check journey files (default: the shipped ones)",
        "lifecycle journeys validate journeys/new_user_coupon.yaml",
    )
    v.add_argument("files", nargs="*")
    p = command(
        jsub,
        "publish",
        cmd_publish,
        "publish journey files as new versions (each with the note and author)",
        'lifecycle journeys publish journeys/new_user_coupon.yaml --note "day-2 push at 10:00"',
    )
    p.add_argument("files", nargs="*")
    p.add_argument("--note", help="why this version (shown in lifecycle journeys history)")
    journey_versions.add_author(p)
    command(jsub, "list", cmd_list, "list published journeys", "lifecycle journeys list")
    for name, fn, text in (
        ("show", cmd_show, "a journey's latest version, status, runs and YAML"),
        ("pause", cmd_pause, "stop new entries and hold pending sends (held, not lost)"),
        ("resume", cmd_resume, "let a paused journey enter and send again"),
    ):
        j = command(jsub, name, fn, text, f"lifecycle journeys {name} new_user_coupon")
        j.add_argument("journey_id")
    command(
        jsub,
        "schema",
        cmd_schema,
        "print the JSON Schema of journey files (for editors)",
        "lifecycle journeys schema > journey.schema.json",
    )
    journey_versions.register(jsub)
