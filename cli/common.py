"""What every command shares: the one-line error, the session factory, dates from flags, and
how a command is declared."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from config import Settings

if TYPE_CHECKING:
    from message_templates.render import TemplateRenderer
    from store.db import SessionFactory

Handler = Callable[[Settings, argparse.Namespace], int]
Commands = argparse._SubParsersAction  # what add_subparsers returns: where commands are added


class CliError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def command(
    parent: Commands, name: str, fn: Handler | None, help: str, example: str
) -> argparse.ArgumentParser:
    """A command (or a group of them) with its help as description and an example beneath.

    Args:
        parent: the group it belongs to.
        name: what the user types.
        fn: the handler; None for a group, whose actions have their own.
        help: one line for the group's list and the command's own help.
        example: how it is typed, shown at the end of its help.
    """
    parser: argparse.ArgumentParser = parent.add_parser(
        name,
        help=help,
        description=help,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if fn is not None:
        parser.set_defaults(fn=fn)
    return parser


def actions(group: argparse.ArgumentParser, dest: str) -> Commands:
    """The actions of a command group (``lifecycle journeys ACTION``); one must be given."""
    return group.add_subparsers(dest=dest, required=True, metavar="ACTION")


def session_factory(settings: Settings) -> SessionFactory:
    """Sessions on the configured database (:func:`compose.session_factory`)."""
    import compose

    return compose.session_factory(settings)


def renderer(settings: Settings) -> TemplateRenderer:
    """The template renderer with the configured locale, timezone and SMS opt-out text
    (:func:`compose.renderer`)."""
    import compose

    return compose.renderer(settings)


def instant(text: str, flag: str) -> datetime:
    """An ISO-8601 date or instant from a flag; no offset means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{flag} {text!r} is not an ISO-8601 date or instant") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
