"""``lifecycle``: the command line of the lifecycle-messaging engine.

One module per command group declares its commands' arguments next to their handlers;
handlers parse, call the services and print. They import those services when they run, not
here, so ``lifecycle --help`` and a mistyped command answer at once rather than after
importing the whole engine.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from cli import (
    audiences,
    broadcast,
    control,
    events,
    journeys,
    outbox,
    report,
    run,
    runs,
    simulate,
    sweeps,
    templates,
    users,
)
from cli.common import CliError
from config import load_settings
from observability.logs import configure_logging

__all__ = ["EPILOG", "CliError", "build_parser", "main"]

EPILOG = """\
the map:
  try it     demo, simulate                  journeys on a simulated clock, before they go live
  run it     dev                             everything local in one command; Ctrl-C stops all
             api, worker, scheduler, migrate the processes of a real deployment
  build      journeys, audiences, templates, send-test
  send       broadcast (one-off campaigns), sweeps (scheduled entries)
  watch      report, users find / timeline, outbox; the web console at http://127.0.0.1:8000/console
             kpi                             the growth plan's KPIs against their targets
             runs where / eject              who is at which step of a journey; end runs by hand
             events rejected / replay        what the API refused, what the router parked
  stop       pause-all / resume-all; users forget (erasure)

quick start:
  lifecycle demo                 the four shipped journeys simulated for synthetic users
  lifecycle simulate journeys/new_user_coupon.yaml --users 500   try one before it goes live
  lifecycle dev                  Temporal dev server + API + worker + scheduler
  curl -u dev-write-key: -H 'Content-Type: application/json' \\
       -d '{"userId":"u1","event":"user_signed_up"}' http://127.0.0.1:8000/v1/track
  lifecycle outbox               what the outbox channel "sent"
  lifecycle users timeline u1    everything that happened to one user
  lifecycle users find alice@example.com    a user by id, email or phone

every command has examples in its own help: lifecycle COMMAND --help (--debug shows tracebacks).
configuration comes from the environment (or .env): DATABASE_URL, TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, and LIFECYCLE_* for the rest (LIFECYCLE_WRITE_KEY, ...).
"""


# In the order `lifecycle --help` lists them.
GROUPS = (
    simulate,
    run,
    journeys,
    report,
    runs,
    control,
    templates,
    sweeps,
    audiences,
    outbox,
    events,
    users,
    broadcast,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``lifecycle`` parser: every command group's commands, in the order of its help."""
    parser = argparse.ArgumentParser(
        prog="lifecycle",
        description="Lifecycle journeys (YAML) run durably on Temporal: coupons, reminders, "
        "win-backs by SMS, email and push, with every send recorded.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def _database_problem(exc: DBAPIError) -> str:
    text = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return f"the database has no lifecycle tables yet ({text}); run `lifecycle migrate`"
    return f"database error: {text}"


def _stoppable() -> None:
    """Ctrl-C (SIGINT) stops a long-running command cleanly, even when it was started with
    SIGINT ignored, as every background job of a non-interactive shell is."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


LONG_RUNNING = ("api", "worker", "dev", "scheduler")


def main(argv: list[str] | None = None) -> int:
    """Run ``lifecycle`` with ``argv`` (default: the process's); the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in LONG_RUNNING:
        _stoppable()
    quiet = args.command not in LONG_RUNNING
    level = logging.DEBUG if args.debug else logging.WARNING if quiet else logging.INFO
    configure_logging("text", level=level)
    try:
        settings = load_settings()
        configure_logging(settings.log_format, level=level)
        return int(args.fn(settings, args))
    except ValidationError as exc:
        if args.debug:
            raise
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["loc"]:
            variable = "LIFECYCLE_" + "_".join(str(p) for p in first["loc"]).upper()
            message = f"bad setting {variable}: {message}"
        print(f"lifecycle: {message}", file=sys.stderr)
    except DBAPIError as exc:
        if args.debug:
            raise
        print(f"lifecycle: {_database_problem(exc)}", file=sys.stderr)
    except CliError as exc:
        print(f"lifecycle: {exc}", file=sys.stderr)
    except BrokenPipeError:  # e.g. `lifecycle journeys schema | head`
        return 0
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"lifecycle: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
    return 1
