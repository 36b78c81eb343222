"""``lifecycle``: the command line of the lifecycle-messaging engine."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from config import Settings, load_settings
from observability.logs import configure_logging

EPILOG = """\
the map:
  try it     demo, simulate                  journeys on a simulated clock, before they go live
  run it     dev                             everything local in one command; Ctrl-C stops all
             api, worker, scheduler, migrate the processes of a real deployment
  build      journeys, audiences, templates, send-test
  send       broadcast (one-off campaigns), sweeps (scheduled entries)
  watch      report, users find / timeline, outbox; the web console at http://127.0.0.1:8000/console
             kpi                             the growth plan's KPIs against their targets
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


KPI_HELP = """\
the growth plan's KPIs, each per complete week or month between --since and --until, the
latest against its target (LIFECYCLE_KPI_TARGETS, JSON by key), each rate with its 95%
Wilson interval. Computed in SQL from the events the platform sends:

  a visit     a session_started event; an order: an order_placed event (userId set)
  signup      the user's first user_signed_up event
  periods     weeks from Monday 00:00, months from the 1st, in LIFECYCLE_DEFAULT_TIMEZONE
              (default Asia/Shanghai); only complete ones, and for cohorts only those
              whose every member's window has closed by --until

  order_conversion         of the week's visitors, the share who ordered that week
                           (target 3.5%)
  first_order_7d           of the week's signups, the share who ordered within 7 days
                           (168 h) of signing up (target 15%, our figure: the plan has none)
  retention_30d            of the week's signups, the share who visited 30-59 days after
                           signing up (target 30%); the cohort table shows weeks 1-8
  repurchase_90d / _365d   of the users who ordered in the 90 / 365 days before the
                           month's end, the share who ordered twice or more (365d: 40%)
  monthly_active_3_visits  of the month's visitors, the share with 3 or more visits (65%)
  gmv, average_order_value orders' value before their coupon (amount paid plus an
                           engine-issued coupon's discount, as in `lifecycle report`) per
                           week, and per order (no target unless set)"""


class CliError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def _engine_factory(settings: Settings):  # type: ignore[no-untyped-def]
    from store.db import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.database_url))


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from devstack.demo import run_demo

    asyncio.run(run_demo(settings, users=args.users, days=args.days, seed=args.seed))
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from simulate.behaviour import BehaviourError, load_behaviour
    from simulate.runner import run_simulation
    from simulate.view import print_result, progress_bar

    if args.users < 1 or args.days < 1:
        raise CliError("--users and --days must be at least 1")
    try:
        behaviour = load_behaviour(args.behaviour)
    except BehaviourError as exc:
        raise CliError(str(exc)) from None
    journeys = [(journey, path.read_text()) for path, journey in _load(args.files)]
    live = sys.stdout.isatty() and not args.json
    console = Console(width=None if live else 120)  # piped: wide enough for the funnels
    with progress_bar(console, args.days, enabled=live) as progress:
        result = asyncio.run(
            run_simulation(
                settings,
                journeys,
                users=args.users,
                days=args.days,
                seed=args.seed,
                behaviour=behaviour,
                database=Path(args.keep_db) if args.keep_db else None,
                progress=progress,
            )
        )
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print_result(result, console)
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from devstack.stack import run_dev

    return run_dev(settings)


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from triggers.server import build_app

    # log_config=None: uvicorn's loggers use the handler (and format) set up in main().
    if settings.api_workers > 1:
        # Each process builds its own app (and logging) from the environment.
        uvicorn.run(
            "triggers.server:app_from_env",
            factory=True,
            host=settings.api_host,
            port=settings.api_port,
            workers=settings.api_workers,
            log_config=None,
        )
        return 0
    uvicorn.run(
        build_app(settings), host=settings.api_host, port=settings.api_port, log_config=None
    )
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker import run_worker

    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from triggers.scheduler import run_scheduler

    try:
        asyncio.run(run_scheduler(settings))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_sweeps_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.sweeps import recent_ticks

    with _engine_factory(settings)() as session:
        ticks = recent_ticks(session, journey_id=args.journey, limit=args.limit)
    if not ticks:
        print("no sweeps yet")
        return 0
    print(f"{'sweep':<48} {'members':>8} {'entered':>8}  state")
    for t in ticks:
        state = (
            "finished" if t.finished_at else "running" if t.started_at else "claimed, not started"
        )
        print(f"{t.workflow_id:<48} {t.members:>8} {t.entered:>8}  {state}")
    return 0


def cmd_sweeps_run(settings: Settings, args: argparse.Namespace) -> int:
    from journeys.schedule import (
        ScheduleError,
        cron_trigger,
        last_tick,
        schedule_audience,
        tick_label,
    )
    from store.journeys import latest_version, spec_of
    from triggers.scheduler import SweepScheduler, sweep_id
    from triggers.temporal_client import connect

    at = _instant(args.at, "--at") if args.at else datetime.now(UTC)
    factory = _engine_factory(settings)
    with factory() as session:
        row = latest_version(session, journey_id=args.journey)
        if row is None or row.status != "published":
            raise CliError(f"journey {args.journey!r} is not published (lifecycle journeys list)")
        schedule = spec_of(row).trigger.schedule
    if schedule is None:
        raise CliError(f"journey {args.journey!r} starts from events, not a schedule")
    try:
        tick = last_tick(cron_trigger(schedule), at)
    except ScheduleError as exc:
        raise CliError(f"journey {args.journey!r}: {exc}") from None
    if tick is None:
        raise CliError(f"{schedule.cron!r} had no tick before {at.isoformat()}")

    wid = sweep_id(args.journey, tick)

    async def start() -> None:
        client = await connect(settings)
        scheduler = SweepScheduler(
            factory=factory,
            client=client,
            task_queue=settings.task_queue,
            page_size=settings.sweep_page_size,
        )
        started = await scheduler.start_sweep(args.journey, tick)
        print(f"{wid}: {'started' if started else 'already started'} (tick {tick_label(tick)})")
        if args.wait:
            with factory() as session:
                total = schedule_audience(schedule).count(session, now=tick)
            await _follow_sweep(client, wid, total)

    asyncio.run(start())
    return 0


async def _follow_sweep(client, wid: str, total: int) -> None:  # type: ignore[no-untyped-def]
    """A progress bar over the sweep's ``progress`` query until it finishes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from workflows.sweep import SweepProgress, SweepResult

    handle = client.get_workflow_handle(wid, result_type=SweepResult)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=not sys.stdout.isatty()) as bar:
        task = bar.add_task("entering", total=total)
        result = asyncio.ensure_future(handle.result())
        while not result.done():
            try:
                now = await handle.query("progress", result_type=SweepProgress)
                bar.update(task, completed=now.members)
            except Exception:  # noqa: S110 - between runs of continue-as-new; ask again
                pass
            await asyncio.wait([result], timeout=0.5)
        done = result.result()
        bar.update(task, completed=done.members)
    stopped = f", stopped: {done.stopped}" if done.stopped else ""
    print(f"{done.members} members, {done.entered} entered{stopped}")


def _instant(text: str, flag: str) -> datetime:
    """An ISO-8601 date or instant from a flag; no offset means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{flag} {text!r} is not an ISO-8601 date or instant") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from store.db import make_engine
    from store.migrate import upgrade

    began = time.monotonic()

    def applied(revision: str, description: str) -> None:
        # One line per migration as it lands: on a large table one may take minutes.
        print(f"  {revision} {description}  ({time.monotonic() - began:.1f} s)", flush=True)

    upgrade(make_engine(settings.database_url), on_step=applied)
    print(f"database at {settings.database_url} is up to date")
    return 0


def _load(paths: list[str]):  # type: ignore[no-untyped-def]
    from journeys.validate import JourneyError, Problem, load_journey, shipped_journey_files
    from message_templates.render import TemplateRenderer

    files = [Path(p) for p in paths] or shipped_journey_files()
    renderer = TemplateRenderer()
    loaded, errors = [], []
    warnings: list[Problem] = []
    for path in files:
        try:
            loaded.append((path, load_journey(path, renderer, warnings=warnings)))
        except JourneyError as exc:
            errors.append(str(exc))
    for warning in warnings:
        print(warning, file=sys.stderr)
    if errors:
        raise CliError("\n".join(errors))
    return loaded


def cmd_journeys_validate(settings: Settings, args: argparse.Namespace) -> int:
    for path, journey in _load(args.files):
        print(f"{path}: ok ({journey.id}, {len(journey.steps)} steps)")
    return 0


def cmd_journeys_publish(settings: Settings, args: argparse.Namespace) -> int:
    from store.db import transaction
    from store.journeys import publish

    loaded = _load(args.files)
    factory = _engine_factory(settings)
    with transaction(factory) as session:
        for path, journey in loaded:
            row = publish(session, journey=journey, source=path.read_text(), now=datetime.now(UTC))
            print(f"{journey.id}: version {row.version} published")
    return 0


def cmd_journeys_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.journeys import live_journeys

    with _engine_factory(settings)() as session:
        rows = live_journeys(session)
    if not rows:
        print("no journeys published yet: lifecycle journeys publish")
    for row in rows:
        when = f"{row.published_at:%Y-%m-%d %H:%M}"
        print(f"{row.journey_id:28} v{row.version:<4} {row.status:10} {when}")
    return 0


def _set_journey_status(settings: Settings, journey_id: str, status: str) -> int:
    from store.db import transaction
    from store.journeys import set_status

    try:
        with transaction(_engine_factory(settings)) as session:
            row = set_status(session, journey_id=journey_id, status=status)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    print(f"{journey_id}: version {row.version} {status}")
    return 0


def cmd_journeys_pause(settings: Settings, args: argparse.Namespace) -> int:
    return _set_journey_status(settings, args.journey_id, "paused")


def cmd_journeys_resume(settings: Settings, args: argparse.Namespace) -> int:
    return _set_journey_status(settings, args.journey_id, "published")


def cmd_journeys_show(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from store.journeys import latest_version
    from store.models import Enrollment

    with _engine_factory(settings)() as session:
        row = latest_version(session, journey_id=args.journey_id)
        if row is None:
            raise CliError(f"no journey {args.journey_id!r} has been published")
        counts = dict(
            session.execute(
                select(Enrollment.exit_reason, func.count())
                .where(Enrollment.journey_id == args.journey_id)
                .group_by(Enrollment.exit_reason)
            ).all()
        )
    running = counts.pop(None, 0)
    done = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    print(f"{row.journey_id} v{row.version} ({row.status}, published {row.published_at:%Y-%m-%d})")
    print(f"runs: {running} running; ended: {done}")
    print()
    print(row.source.rstrip())
    return 0


def cmd_journeys_schema(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from journeys.models import Journey

    print(json.dumps(Journey.model_json_schema(by_alias=True), indent=2, ensure_ascii=False))
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from devstack.views import print_report
    from store.journeys import live_journeys
    from store.money import Costs
    from store.reports import journey_report

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise CliError(f"--since {args.since!r} is not an ISO-8601 date or instant") from None
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    with _engine_factory(settings)() as session:
        ids = [args.journey] if args.journey else [r.journey_id for r in live_journeys(session)]
        costs = Costs.of(settings)
        reports = [journey_report(session, journey_id=j, since=since, costs=costs) for j in ids]
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
        return 0
    console = Console()
    for report in reports:
        print_report(report, console)
        console.print()
    return 0


def cmd_kpi(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from devstack.kpi_view import print_kpis
    from store.kpi import kpi_report

    until = _instant(args.until, "--until") if args.until else datetime.now(UTC)
    since = _instant(args.since, "--since") if args.since else None
    if since is not None and since >= until:
        raise CliError("--since must come before --until")
    with _engine_factory(settings)() as session:
        report = kpi_report(
            session,
            since=since,
            until=until,
            timezone=settings.default_timezone,
            targets=settings.kpi_targets,
        )
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return 0
    # Piped or redirected, the lines keep their width instead of folding at 80 columns.
    print_kpis(report, Console(width=None if sys.stdout.isatty() else 132))
    return 0


def cmd_pause_all(settings: Settings, args: argparse.Namespace) -> int:
    from store.control import set_sends_paused
    from store.db import transaction

    paused = args.command == "pause-all"
    with transaction(_engine_factory(settings)) as session:
        set_sends_paused(session, paused=paused, now=datetime.now(UTC))
    if paused:
        print("all sends are held (not lost) until `lifecycle resume-all`")
    else:
        print("sends resumed; held messages go out at their next check (within the hour)")
    return 0


def cmd_users_forget(settings: Settings, args: argparse.Namespace) -> int:
    from store.db import transaction
    from store.erasure import forget_user

    with transaction(_engine_factory(settings)) as session:
        erasure = forget_user(session, user_id=args.user_id, now=datetime.now(UTC))
    if not erasure.found:
        raise CliError(f"nothing recorded for user {args.user_id!r}")
    ended = asyncio.run(_end_runs(settings, erasure.open_runs)) if erasure.open_runs else 0
    print(f"{args.user_id}: erased; {ended} running journey(s) ended")
    return 0


async def _end_runs(settings: Settings, workflow_ids: list[str]) -> int:
    from triggers.server import ConnectingRouter

    router = ConnectingRouter(settings, _engine_factory(settings))
    try:
        await router.end_runs(workflow_ids, reason="user erased")
    except Exception as exc:  # the profile is gone: left-over runs only skip their sends
        print(f"lifecycle: runs not ended ({exc}); they will skip every send", file=sys.stderr)
        return 0
    return len(workflow_ids)


def _template_context(settings: Settings, user_id: str | None) -> dict[str, object]:
    from message_templates.sample import sample_context
    from store.models import User

    context = sample_context()
    if user_id is None:
        return context
    with _engine_factory(settings)() as session:
        user = session.get(User, user_id)
    if user is None:
        raise CliError(f"no user {user_id!r}")
    traits = user.traits or {}
    context["user"] = {
        "id": user.id,
        "name": str(traits.get("name") or ""),
        "member_tier": user.member_tier,
        "locale": user.locale or settings.default_locale,
        "timezone": user.timezone or settings.default_timezone,
    }
    return context


def _render(settings: Settings, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from message_templates.render import TemplateError, TemplateRenderer

    renderer = TemplateRenderer(
        default_locale=settings.default_locale,
        default_timezone=settings.default_timezone,
        sms_opt_out_text=settings.sms_opt_out_text,
    )
    try:
        channel = renderer.channel_of(args.template)
        context = _template_context(settings, getattr(args, "user", None))
        return renderer.render(args.template, channel=channel, locale=args.locale, context=context)
    except TemplateError as exc:
        raise CliError(str(exc)) from None


def cmd_templates_preview(settings: Settings, args: argparse.Namespace) -> int:
    message = _render(settings, args)
    print(f"{message.template} · {message.channel} · {message.locale}", end="")
    print(f" · {message.segments} SMS segment(s)" if message.segments else "")
    for label, text in (("title", message.title), ("subject", message.subject)):
        if text:
            print(f"{label}: {text}")
    print(message.body)
    if message.html and args.html:
        print(message.html)
    if message.data:
        print(f"data: {message.data}")
    return 0


TEST_TEMPLATES = {
    "sms": "new_user_welcome_sms",
    "email": "new_user_last_chance_email",
    "push": "new_user_reminder_push",
}


def cmd_send_test(settings: Settings, args: argparse.Namespace) -> int:
    import uuid

    if getattr(args, "channel", None) and not args.template:
        args.template = TEST_TEMPLATES[args.channel]

    from channels.base import OutboundMessage, PermanentSendError, TransientSendError
    from worker import build_channels

    message = _render(settings, args)
    if getattr(args, "channel", None) and message.channel != args.channel:
        raise CliError(
            f"template {message.template!r} is for {message.channel}, not {args.channel}"
        )
    channel = build_channels(settings, _engine_factory(settings))[message.channel]
    outbound = OutboundMessage(
        key=f"test:{uuid.uuid4().hex}",
        channel=message.channel,
        to=args.to,
        body=message.body,
        subject=message.subject,
        html=message.html,
        title=message.title,
        data=dict(message.data),
        tags=("send-test", message.template),
        priority=message.priority,
        ttl_seconds=message.ttl_seconds,
        sound=message.sound,
    )
    try:
        result = channel.send(outbound)
    except (PermanentSendError, TransientSendError) as exc:
        raise CliError(f"{channel.name} refused: {exc}") from None
    print(f"sent through {result.provider}: {result.provider_message_id}")
    return 0


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from store.outbox import list_outbox

    with _engine_factory(settings)() as session:
        rows = list_outbox(session, limit=args.limit)
    if not rows:
        print("the outbox is empty")
    for m in reversed(rows):
        head = f"#{m.id} {m.created_at:%Y-%m-%d %H:%M} {m.channel:5} → {m.recipient}"
        print(head + (f"  [{m.subject}]" if m.subject else ""))
        print("    " + m.body.replace("\n", "\n    ")[:400])
    return 0


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


def cmd_events_rejected(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from store.rejected import list_rejected

    since = _since_arg(args.since, now=datetime.now(UTC))
    with _engine_factory(settings)() as session:
        rows = list_rejected(
            session, since=since, stage=args.stage, pending_only=args.pending, limit=args.limit
        )
    if args.json:
        out = [
            {
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
            for r in rows
        ]
        print(json.dumps(out, indent=2))
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


def cmd_events_replay(settings: Settings, args: argparse.Namespace) -> int:
    from triggers.api import limits_of
    from triggers.replay import ReplayError, replay

    corrected = None
    if args.with_file:
        source = sys.stdin if args.with_file == "-" else open(args.with_file, encoding="utf-8")  # noqa: SIM115
        with source:
            corrected = source.read()
    try:
        done = replay(
            _engine_factory(settings),
            rejected_id=args.id,
            limits=limits_of(settings),
            now=datetime.now(UTC),
            corrected=corrected,
        )
    except ReplayError as exc:
        raise CliError(str(exc)) from None
    print(f"#{args.id}: {done.result}")
    return 0


def cmd_users_timeline(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from store.reports import user_timeline

    with _engine_factory(settings)() as session:
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


def cmd_users_find(settings: Settings, args: argparse.Namespace) -> int:
    from store.users import find_users
    from triggers.profiles import normalize_phone

    query = args.query.strip()
    with _engine_factory(settings)() as session:
        found = find_users(session, query=query, phone=normalize_phone(query))
    if not found:
        raise CliError(f"no user has the id, email or phone {query!r}")
    for u in found:
        seen = f"{u.last_seen_at:%Y-%m-%d %H:%M} UTC" if u.last_seen_at else "never"
        print(
            f"{u.id}  email {u.email or '-'}  phone {u.phone or '-'}  "
            f"signed up {u.created_at:%Y-%m-%d %H:%M} UTC  last seen {seen}"
        )
    return 0


def _audience(spec: str, *, now: datetime | None = None):  # type: ignore[no-untyped-def]
    """An audience from a file path, a shipped audience id, or an inline rule."""
    from audiences.audience import load_audience, parse_audience_text, shipped_audiences
    from audiences.rules import AudienceError

    try:
        if Path(spec).is_file():
            return load_audience(spec)
        shipped = shipped_audiences()
        if spec in shipped:
            return shipped[spec]
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


def cmd_audiences_validate(settings: Settings, args: argparse.Namespace) -> int:
    from audiences.describe import describe

    audience = _audience(args.audience)
    print(f"{audience.id}: ok — {describe(audience.rule)}")
    return 0


def cmd_audiences_count(settings: Settings, args: argparse.Namespace) -> int:
    audience = _audience(args.audience)
    with _engine_factory(settings)() as session:
        print(audience.count(session, now=_now(args)))
    return 0


def cmd_audiences_preview(settings: Settings, args: argparse.Namespace) -> int:
    audience = _audience(args.audience)
    now = _now(args)
    with _engine_factory(settings)() as session:
        total = audience.count(session, now=now)
        sample = audience.members(session, now=now, limit=args.limit)
        why = audience.explain(session, user_ids=sample, now=now)
    print(f"{audience.name}: {total} member(s) at {now:%Y-%m-%d %H:%M} UTC")
    for user_id in sample:
        print(f"  {user_id}")
        for text, held in why.get(user_id, []):
            print(f"      {'✓' if held else '✗'} {text}")
    return 0


def _broadcast_id(text: str) -> int:
    if not text.isdigit():
        raise CliError(f"broadcast id {text!r}: a number, as `lifecycle broadcast list` shows")
    return int(text)


async def _broadcast_client(settings: Settings):  # type: ignore[no-untyped-def]
    from triggers.temporal_client import connect

    try:
        return await connect(settings)
    except RuntimeError as exc:
        raise CliError(f"cannot reach Temporal at {settings.temporal_address}: {exc}") from None


def cmd_broadcast_start(settings: Settings, args: argparse.Namespace) -> int:
    from message_templates.render import TemplateRenderer
    from triggers.broadcasts import BroadcastError, follow, plan_broadcast, start_broadcast

    now = datetime.now(UTC)
    renderer = TemplateRenderer(
        default_locale=settings.default_locale,
        default_timezone=settings.default_timezone,
        sms_opt_out_text=settings.sms_opt_out_text,
    )
    try:
        plan = plan_broadcast(
            renderer,
            audience=args.audience,
            template=args.template,
            channel=args.channel,
            at=args.at,
            rate=args.rate,
            name=args.name,
            topic=args.topic,
            now=now,
        )
    except BroadcastError as exc:
        raise CliError(str(exc)) from None
    factory = _engine_factory(settings)
    with factory() as session:
        total = plan.audience.count(session, now=now)

    async def go() -> int:
        client = await _broadcast_client(settings)
        broadcast_id = await start_broadcast(
            client,
            factory,
            plan,
            task_queue=settings.task_queue,
            now=now,
            channel_rate=settings.broadcast_rate_for(plan.channel),
        )
        when = "now" if plan.send_at <= now else f"at {plan.send_at:%Y-%m-%d %H:%M}Z"
        print(
            f"broadcast {broadcast_id} ({plan.name}): {total} in {plan.audience.id}, sending {when}"
        )
        if args.no_wait or plan.send_at > now + timedelta(minutes=1):
            print(f"follow it with: lifecycle broadcast status {broadcast_id} --follow")
        else:
            await follow(client, broadcast_id, total=total)
        return 0

    return asyncio.run(go())


def cmd_broadcast_status(settings: Settings, args: argparse.Namespace) -> int:
    from audiences.audience import audience_from_data
    from store.broadcasts import message_counts
    from triggers.broadcasts import BroadcastError, follow, get_broadcast, live_progress, summary

    broadcast_id = _broadcast_id(args.broadcast_id)
    factory = _engine_factory(settings)
    try:
        row = get_broadcast(factory, broadcast_id)
    except BroadcastError as exc:
        raise CliError(str(exc)) from None
    print(
        f"broadcast {row.id} ({row.name}): {row.template} by {row.channel} to {row.audience_source}"
    )

    async def go() -> None:
        client = await _broadcast_client(settings)
        progress = await live_progress(client, broadcast_id)
        if progress is not None and args.follow:
            with factory() as session:  # the bar's total: the audience as it is now
                audience = audience_from_data(row.audience, source=f"broadcast {row.id}")
                total = audience.count(session, now=datetime.now(UTC))
            await follow(client, broadcast_id, total=total)
        elif progress is not None:
            print(summary(progress))

    if row.status not in ("completed", "cancelled"):
        asyncio.run(go())
    with factory() as session:
        row = get_broadcast(factory, broadcast_id)
        counts = message_counts(session, broadcast_id=broadcast_id)
    ledger = ", ".join(
        f"{s}{f' ({r})' if r else ''} {n}" for (s, r), n in sorted(counts.items(), key=str)
    )
    print(f"{row.status}: {row.recipients} recipient(s); ledger: {ledger or 'nothing yet'}")
    return 0


def cmd_broadcast_signal(settings: Settings, args: argparse.Namespace) -> int:
    from triggers.broadcasts import BroadcastError, get_broadcast, signal_broadcast

    broadcast_id = _broadcast_id(args.broadcast_id)
    signal = args.broadcast_command

    async def go() -> None:
        row = get_broadcast(_engine_factory(settings), broadcast_id)
        await signal_broadcast(await _broadcast_client(settings), row, signal)

    try:
        asyncio.run(go())
    except BroadcastError as exc:
        raise CliError(str(exc)) from None
    print(f"broadcast {broadcast_id}: {signal} sent")
    return 0


def cmd_broadcast_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.broadcasts import list_broadcasts

    with _engine_factory(settings)() as session:
        rows = list_broadcasts(session, limit=args.limit)
    if not rows:
        print("no broadcasts yet: lifecycle broadcast start --help")
    for row in rows:
        print(
            f"{row.id:>5} {row.status:10} {row.send_at:%Y-%m-%d %H:%M}Z {row.channel:5} "
            f"{row.recipients:>8} {row.name}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifecycle",
        description="Lifecycle journeys (YAML) run durably on Temporal: coupons, reminders, "
        "win-backs by SMS, email and push, with every send recorded.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[..., int], help: str, example: str, parent=sub):  # type: ignore[no-untyped-def]
        p = parent.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(fn=fn)
        return p

    demo = add(
        "demo",
        cmd_demo,
        "simulate the four shipped journeys for synthetic users (lifecycle simulate)",
        "lifecycle demo --users 300 --seed 3",
    )
    demo.add_argument("--users", type=int, default=150, help="population size (default 150)")
    demo.add_argument("--days", type=int, default=14, help="days users enter for (default 14)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    sim = add(
        "simulate",
        cmd_simulate,
        "run journeys for synthetic users on a simulated clock, before they go live: "
        "funnel, send hours, one user's timeline",
        "lifecycle simulate journeys/new_user_coupon.yaml --users 1000 --days 30 --seed 7\n"
        "  lifecycle simulate journeys/cart_abandonment.yaml --behaviour behaviour.yaml --json\n\n"
        "behaviour file (every field optional; defaults shown):\n"
        "  daily: {visit: 0.3, add_to_cart: 0.06, order: 0.03, coupon: 0.01}\n"
        "  lift: {factor: 2.0, days: 2}       # daily chances x factor after a message\n"
        "  population: {new: 0.4, dormant: 0.25, dormant_visit: 0.1}",
    )
    sim.add_argument(
        "files", nargs="*", metavar="JOURNEY.yaml", help="journeys (default: the shipped ones)"
    )
    sim.add_argument("--users", type=int, default=1000, help="population size (default 1000)")
    sim.add_argument(
        "--days", type=int, default=30, help="days users enter for (default 30); runs then end"
    )
    sim.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    sim.add_argument("--behaviour", metavar="FILE", help="YAML overriding the behaviour model")
    sim.add_argument("--json", action="store_true", help="machine-readable output")
    sim.add_argument("--keep-db", metavar="PATH", help="keep the simulation's SQLite file")
    add(
        "dev",
        cmd_dev,
        "run the local stack: Temporal dev server, API, worker, sweep scheduler",
        "lifecycle dev",
    )
    add(
        "api",
        cmd_api,
        "run the ingestion API (uvicorn) on LIFECYCLE_API_HOST:LIFECYCLE_API_PORT; "
        "LIFECYCLE_API_WORKERS processes (one per core serves the most events)",
        "LIFECYCLE_API_PORT=8080 LIFECYCLE_API_WORKERS=2 lifecycle api",
    )
    worker = add(
        "worker",
        cmd_worker,
        "run a Temporal worker",
        "TEMPORAL_ADDRESS=temporal:7233 lifecycle worker",
    )
    worker.description = (
        "run a Temporal worker (run as many as you like): journeys, sweeps and broadcasts on\n"
        "LIFECYCLE_TASK_QUEUE (default lifecycle); the journeys' provider calls on\n"
        "<queue>.sms, .email, .push, limited to LIFECYCLE_SMS_RATE_PER_SECOND etc.; broadcast\n"
        "batches on <queue>.sms.bulk etc., limited to LIFECYCLE_SMS_BROADCAST_RATE_PER_SECOND\n"
        "etc. The limits hold across all workers. 16 activity threads, one database\n"
        "connection each; LIFECYCLE_WORKER_METRICS_ADDRESS serves Prometheus metrics.\n"
        "SIGTERM or Ctrl-C drains: no new tasks, running activities get up to\n"
        "LIFECYCLE_WORKER_SHUTDOWN_GRACE seconds (default 15) to finish; a second signal\n"
        "kills it at once."
    )
    add(
        "migrate",
        cmd_migrate,
        "create or upgrade the database schema",
        "DATABASE_URL=postgresql://u@db/lifecycle lifecycle migrate",
    )

    journeys = add(
        "journeys", lambda *_: 0, "validate, publish and list journeys", "lifecycle journeys list"
    )
    jsub = journeys.add_subparsers(dest="journeys_command", required=True, metavar="ACTION")
    v = add(
        "validate",
        cmd_journeys_validate,
        "check journey files (default: the shipped ones)",
        "lifecycle journeys validate journeys/new_user_coupon.yaml",
        jsub,
    )
    v.add_argument("files", nargs="*")
    p = add(
        "publish",
        cmd_journeys_publish,
        "publish journey files as new versions",
        "lifecycle journeys publish journeys/new_user_coupon.yaml",
        jsub,
    )
    p.add_argument("files", nargs="*")
    add("list", cmd_journeys_list, "list published journeys", "lifecycle journeys list", jsub)
    for name, fn, text in (
        ("show", cmd_journeys_show, "a journey's latest version, status, runs and YAML"),
        ("pause", cmd_journeys_pause, "stop new entries and hold pending sends (held, not lost)"),
        ("resume", cmd_journeys_resume, "let a paused journey enter and send again"),
    ):
        j = add(name, fn, text, f"lifecycle journeys {name} new_user_coupon", jsub)
        j.add_argument("journey_id")
    add(
        "schema",
        cmd_journeys_schema,
        "print the JSON Schema of journey files (for editors)",
        "lifecycle journeys schema > journey.schema.json",
        jsub,
    )

    r = add(
        "report",
        cmd_report,
        "what journeys achieved: sends, skips by reason, conversions, lift over holdout",
        "lifecycle report new_user_coupon --since 2026-06-01 --json",
    )
    r.description = (
        "what journeys achieved: sends, skips by reason, conversions, lift over holdout, and\n"
        "money per entrant (orders, GMV, coupon and message cost; incremental margin, cost per\n"
        "incremental order, ROI) with 95% intervals and what is not significant yet. Priced by\n"
        "LIFECYCLE_SMS_COST_FEN_PER_SEGMENT (default 5 fen), LIFECYCLE_SMS_COST_FEN_BY_COUNTRY\n"
        "(JSON by E.164 prefix, e.g. '{\"+1\": 60}'), LIFECYCLE_EMAIL_COST_FEN (default 1),\n"
        "LIFECYCLE_PUSH_COST_FEN (default 0) and LIFECYCLE_MARGIN_RATE (default 0.25). The\n"
        "methods (Newcombe, BCa bootstrap, power, sample-ratio check) are in the README."
    )
    r.add_argument("journey", nargs="?", help="one journey (default: all)")
    r.add_argument("--since", help="only enrollments from this date or instant on")
    r.add_argument("--json", action="store_true", help="machine-readable output")

    k = add(
        "kpi",
        cmd_kpi,
        "the growth plan's KPIs per week or month against their targets, with Wilson intervals",
        "lifecycle kpi --since 2026-01-01 --json",
    )
    k.description = KPI_HELP
    k.add_argument("--since", help="from this date or instant on (default: 26 weeks before)")
    k.add_argument("--until", help="up to this date or instant (default: now)")
    k.add_argument("--json", action="store_true", help="machine-readable output")

    add(
        "pause-all",
        cmd_pause_all,
        "hold every send of every journey at once (held, not lost)",
        "lifecycle pause-all",
    )
    add("resume-all", cmd_pause_all, "release sends held by pause-all", "lifecycle resume-all")

    templates = add(
        "templates",
        lambda *_: 0,
        "preview templates and send test messages",
        "lifecycle templates preview new_user_welcome_sms --locale en",
    )
    tsub = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")
    pv = add(
        "preview",
        cmd_templates_preview,
        "render a template with sample data or a real user's profile",
        "lifecycle templates preview new_user_last_chance_email --user u1 --html",
        tsub,
    )
    pv.add_argument("template")
    pv.add_argument("--user", help="render for this user (default: sample data)")
    pv.add_argument("--locale", help="e.g. zh-CN or en (default: the user's, else zh-CN)")
    pv.add_argument("--html", action="store_true", help="also print an email's HTML")
    pv.add_argument("--sample", action="store_true", help="sample data (the default)")
    st = add(
        "send-test",
        cmd_send_test,
        "send a template with sample data to one address through the configured channel",
        "lifecycle templates send-test new_user_welcome_sms --to +8613800138000",
        tsub,
    )
    st.add_argument("template")
    st.add_argument("--to", required=True, help="phone (E.164), email address or push token")
    st.add_argument("--locale")
    quick = add(
        "send-test",
        cmd_send_test,
        "send a test message on a channel (its sample template) through the configured provider",
        "lifecycle send-test --channel sms --to +8613800138000",
    )
    quick.add_argument("--channel", choices=sorted(TEST_TEMPLATES), required=True)
    quick.add_argument("--to", required=True, help="phone (E.164), email address or push token")
    quick.add_argument("--template", help="default: the channel's new-user template")
    quick.add_argument("--locale")

    add(
        "scheduler",
        cmd_scheduler,
        "run the sweep scheduler: one sweep per tick of each schedule-triggered journey",
        "lifecycle scheduler   # as many replicas as you like; each tick sweeps once",
    )
    sweeps = add(
        "sweeps",
        lambda *_: 0,
        "list scheduled sweeps, or start one by hand",
        "lifecycle sweeps list --journey dormancy_wakeup",
    )
    ssub = sweeps.add_subparsers(dest="sweeps_command", required=True, metavar="ACTION")
    sl = add(
        "list",
        cmd_sweeps_list,
        "the newest sweeps: members found, runs entered, state",
        "lifecycle sweeps list --journey dormancy_wakeup --limit 5",
        ssub,
    )
    sl.add_argument("--journey", help="one journey only")
    sl.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    sr = add(
        "run",
        cmd_sweeps_run,
        "start the sweep of a journey's latest tick at or before --at (default now), "
        "unless it already ran; a worker does the sweeping",
        "lifecycle sweeps run dormancy_wakeup --at 2026-11-11T10:00:00+08:00 --wait",
        ssub,
    )
    sr.add_argument("journey")
    sr.add_argument("--at", help="ISO-8601 instant (default: now)")
    sr.add_argument("--wait", action="store_true", help="show progress until the sweep ends")

    audiences = add(
        "audiences",
        lambda *_: 0,
        "check, count and preview audience rules",
        "lifecycle audiences count dormant_30d",
    )
    asub = audiences.add_subparsers(dest="audiences_command", required=True, metavar="ACTION")
    for name, fn, text, example in (
        (
            "validate",
            cmd_audiences_validate,
            "check a rule",
            "lifecycle audiences validate audiences/high_value.yaml",
        ),
        (
            "count",
            cmd_audiences_count,
            "count the members now",
            "lifecycle audiences count 'last_seen: {not_within: 30d}'",
        ),
        (
            "preview",
            cmd_audiences_preview,
            "show a sample of members and why each matched",
            "lifecycle audiences preview mother_and_baby --limit 5",
        ),
    ):
        a = add(name, fn, text, example, asub)
        a.add_argument(
            "audience", help="a file, a shipped audience id, or an inline YAML/JSON rule"
        )
        a.add_argument("--now", help="evaluate at this ISO-8601 instant (default: now)")
        if name == "preview":
            a.add_argument("--limit", type=int, default=10)

    o = add(
        "outbox", cmd_outbox, "list what the outbox channel recorded", "lifecycle outbox --limit 5"
    )
    o.add_argument("--limit", type=int, default=20)

    ev = add(
        "events",
        lambda *_: 0,
        "the dead-letter table: calls the API refused, events the router parked",
        "lifecycle events rejected --since 24h",
    )
    esub = ev.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    er = add(
        "rejected",
        cmd_events_rejected,
        "list refused calls (raw, with field and reason) and parked events, newest first",
        "lifecycle events rejected --since 24h\n"
        "  lifecycle events rejected --stage route --pending --json",
        esub,
    )
    er.add_argument("--since", help="from this date, instant, or age (24h, 7d) on")
    er.add_argument("--stage", choices=["ingest", "route"], help="refused calls or parked events")
    er.add_argument("--pending", action="store_true", help="only those not replayed yet")
    er.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    er.add_argument("--json", action="store_true", help="machine-readable output, raw included")
    rp = add(
        "replay",
        cmd_events_replay,
        "try one again after a fix: a refused call is judged under today's limits (or from a "
        "corrected copy) and stored; a parked event is routed again by the worker",
        "lifecycle events replay 12\n  lifecycle events replay 12 --with fixed.json",
        esub,
    )
    rp.add_argument("id", type=int, help="the id `lifecycle events rejected` shows (#12)")
    rp.add_argument(
        "--with",
        dest="with_file",
        metavar="FILE",
        help="a corrected copy of the refused call, as JSON ('-' reads stdin)",
    )

    users = add(
        "users",
        lambda *_: 0,
        "find a user by id, email or phone; their timeline",
        "lifecycle users timeline u1",
    )
    usub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    f = add(
        "forget",
        cmd_users_forget,
        "erase a user (PIPL/GDPR): profile, contacts, event properties; end their runs",
        "lifecycle users forget u1",
        usub,
    )
    f.add_argument("user_id")
    t = add(
        "timeline",
        cmd_users_timeline,
        "events, journeys, coupons, sends and skips of a user",
        "lifecycle users timeline u1 --properties",
        usub,
    )
    t.add_argument("user_id")
    t.add_argument(
        "--properties", action="store_true", help="each event's properties, as JSON, beneath it"
    )
    fu = add(
        "find",
        cmd_users_find,
        "users by id, email or phone (as typed: +86 138 0013 8000, 138-0013-8000)",
        "lifecycle users find alice@example.com",
        usub,
    )
    fu.add_argument("query", help="a user id, an email address or a phone number")

    broadcast = add(
        "broadcast",
        lambda *_: 0,
        "send one template to a whole audience: start, watch, pause, resume, cancel",
        "lifecycle broadcast start --audience audiences/high_value.yaml "
        "--template sale_preheat_sms --channel sms --rate 50/s",
    )
    bsub = broadcast.add_subparsers(dest="broadcast_command", required=True, metavar="ACTION")
    bs = add(
        "start",
        cmd_broadcast_start,
        "check and start a broadcast; shows its progress until done (unless --no-wait)",
        "lifecycle broadcast start --audience high_value --template sale_preheat_sms "
        "--channel sms --at 2026-06-15T20:00+08:00",
        bsub,
    )
    bs.add_argument("--audience", required=True, help="an audience file (or a shipped id)")
    bs.add_argument("--template", required=True, help="a template written for --channel")
    bs.add_argument("--channel", required=True, help="sms, email or push")
    bs.add_argument("--at", help="ISO-8601 instant with offset (default: now)")
    bs.add_argument("--rate", help="at most this many sends, e.g. 50/s or 3000/m")
    bs.add_argument("--name", help="a name for lists (default: template to audience)")
    bs.add_argument("--topic", choices=("marketing", "transactional"), default="marketing")
    bs.add_argument("--no-wait", action="store_true", help="start and return")
    bst = add(
        "status",
        cmd_broadcast_status,
        "a broadcast's progress and ledger",
        "lifecycle broadcast status 3 --follow",
        bsub,
    )
    bst.add_argument("broadcast_id")
    bst.add_argument("--follow", action="store_true", help="a progress bar until it ends")
    for name, text in (
        ("pause", "send nothing more until resumed (held, not lost)"),
        ("resume", "let a paused broadcast send again"),
        ("cancel", "stop a broadcast; what was sent stays sent"),
    ):
        b = add(name, cmd_broadcast_signal, text, f"lifecycle broadcast {name} 3", bsub)
        b.add_argument("broadcast_id")
    bl = add("list", cmd_broadcast_list, "recent broadcasts", "lifecycle broadcast list", bsub)
    bl.add_argument("--limit", type=int, default=20)
    return parser  # fmt: skip


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


if __name__ == "__main__":
    sys.exit(main())
