"""``lifecycle journeys history | rollback | draft``: a journey's versions (who published
what, when, why, and what changed), rolling back to one, and drafts saved without publishing."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.common import CliError, Commands, actions, command, session_factory
from config import Settings

if TYPE_CHECKING:
    from journeys.problems import Problem
    from store.drafts import Published


def author_of(args: argparse.Namespace) -> str:
    """Who publishes: ``--author``, or the user logged in to the machine."""
    return str(args.author or getpass.getuser())


def _templates() -> Any:
    from message_templates.render import TemplateRenderer

    return TemplateRenderer()


def _said(published: Published, journey_id: str) -> str:
    row = published.version
    if not published.changed:
        return f"{journey_id}: unchanged, version {row.version} stays live"
    return f"{journey_id}: version {row.version} published" + (f" ({row.note})" if row.note else "")


def _problem_lines(problems: list[Problem]) -> list[str]:
    return [f"  {p}" for p in problems]


def _journey_id_in(text: str) -> str | None:
    """The ``id:`` a YAML gives itself, read even when the rest of the journey is wrong."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, str) and found else None


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    from store.journeys import history

    with session_factory(settings)() as session:
        entries = history(session, journey_id=args.journey_id)
    if not entries:
        raise CliError(f"no journey {args.journey_id!r} has been published")
    for entry in entries:
        row = entry.version
        who = row.published_by or "—"
        print(
            f"v{row.version:<4} {row.published_at:%Y-%m-%d %H:%M} {who:16} {row.status:9} "
            f"{row.note or ''}".rstrip()
        )
        if args.diff:
            print(entry.diff.rstrip() or "  (same YAML)")
            print()
    return 0


def cmd_rollback(settings: Settings, args: argparse.Namespace) -> int:
    from journeys.problems import JourneyError
    from store.db import transaction
    from store.drafts import rollback

    try:
        with transaction(session_factory(settings)) as session:
            published = rollback(
                session,
                journey_id=args.journey_id,
                version=args.version,
                templates=_templates(),
                now=datetime.now(UTC),
                published_by=author_of(args),
                note=args.note,
            )
            said = _said(published, args.journey_id)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    except JourneyError as exc:
        raise CliError(f"v{args.version} no longer passes the checks:\n{exc}") from None
    print(said)
    return 0


def cmd_draft_save(settings: Settings, args: argparse.Namespace) -> int:
    from store.db import transaction
    from store.drafts import check_source, save_draft

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
    journey_id = args.journey or _journey_id_in(text)
    if journey_id is None:
        raise CliError(f"{path}: no journey id in it to save the draft under; give --journey ID")
    checked = check_source(text, file=str(path), templates=_templates(), journey_id=journey_id)
    with transaction(session_factory(settings)) as session:
        save_draft(
            session,
            journey_id=journey_id,
            source=text,
            saved_by=author_of(args),
            now=datetime.now(UTC),
        )
    errors = len(checked.errors)
    print(
        f"{journey_id}: draft saved"
        + (f"; {errors} error(s) to fix before it can be published:" if errors else "")
    )
    for line in _problem_lines(checked.problems):
        print(line)
    return 0


def _draft(settings: Settings, journey_id: str) -> tuple[str, str, datetime]:
    from store.drafts import draft_of

    with session_factory(settings)() as session:
        draft = draft_of(session, journey_id=journey_id)
        if draft is None:
            raise CliError(f"{journey_id} has no draft: lifecycle journeys draft save FILE")
        return draft.source, draft.saved_by, draft.saved_at


def cmd_draft_show(settings: Settings, args: argparse.Namespace) -> int:
    from store.drafts import check_source

    source, by, at = _draft(settings, args.journey_id)
    file = f"{args.journey_id} draft"
    checked = check_source(source, file=file, templates=_templates(), journey_id=args.journey_id)
    print(f"{args.journey_id} draft, saved {at:%Y-%m-%d %H:%M} by {by}")
    print(
        "problems:\n" + "\n".join(_problem_lines(checked.problems))
        if checked.problems
        else "problems: none"
    )
    print()
    print(source.rstrip())
    return 0


def cmd_draft_diff(settings: Settings, args: argparse.Namespace) -> int:
    from store.drafts import draft_diff

    with session_factory(settings)() as session:
        diff = draft_diff(session, journey_id=args.journey_id)
    if diff is None:
        raise CliError(f"{args.journey_id} has no draft: lifecycle journeys draft save FILE")
    print(diff.rstrip() or f"{args.journey_id}: the draft is the live YAML")
    return 0


def cmd_draft_publish(settings: Settings, args: argparse.Namespace) -> int:
    from journeys.problems import JourneyError
    from store.db import transaction
    from store.drafts import publish_draft

    try:
        with transaction(session_factory(settings)) as session:
            published = publish_draft(
                session,
                journey_id=args.journey_id,
                templates=_templates(),
                now=datetime.now(UTC),
                note=args.note,
                published_by=author_of(args),
            )
            said = _said(published, args.journey_id)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    except JourneyError as exc:
        raise CliError(f"the draft of {args.journey_id} is not published:\n{exc}") from None
    print(said)
    return 0


def add_author(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--author", help="who publishes (default: the logged-in user)")


def register(jsub: Commands) -> None:
    """The version and draft actions of ``lifecycle journeys``."""
    h = command(
        jsub,
        "history",
        cmd_history,
        "every version of a journey: when, who, status and note (--diff: what each changed)",
        "lifecycle journeys history new_user_coupon --diff",
    )
    h.add_argument("journey_id")
    h.add_argument("--diff", action="store_true", help="each version's diff against the one before")
    r = command(
        jsub,
        "rollback",
        cmd_rollback,
        "publish an earlier version's YAML again, as a new version (history is kept)",
        'lifecycle journeys rollback new_user_coupon 2 --note "day-2 push annoyed people"',
    )
    r.add_argument("journey_id")
    r.add_argument("version", type=int)
    r.add_argument("--note", help='why; the version\'s note reads "rolled back to vN: NOTE"')
    add_author(r)
    draft = command(
        jsub,
        "draft",
        None,
        "save, show, compare and publish a journey's draft (one per journey)",
        "lifecycle journeys draft save my_journey.yaml",
    )
    dsub = actions(draft, "draft_command")
    s = command(
        dsub,
        "save",
        cmd_draft_save,
        "keep a journey file as its draft without publishing it (problems are listed, kept)",
        "lifecycle journeys draft save journeys/new_user_coupon.yaml",
    )
    s.add_argument("file")
    s.add_argument("--journey", help="the journey it is a draft of (default: its id:)")
    add_author(s)
    for name, fn, text in (
        ("show", cmd_draft_show, "the draft's YAML, who saved it when, and its problems"),
        ("diff", cmd_draft_diff, "the draft against the live version, as a unified diff"),
    ):
        d = command(dsub, name, fn, text, f"lifecycle journeys draft {name} new_user_coupon")
        d.add_argument("journey_id")
    p = command(
        dsub,
        "publish",
        cmd_draft_publish,
        "publish the draft (checked as any publish) as a new version, with a note",
        'lifecycle journeys draft publish new_user_coupon --note "shorter SMS"',
    )
    p.add_argument("journey_id")
    p.add_argument("--note", help="why this version (shown in the history)")
    add_author(p)
