"""The broadcasts: the list, a new broadcast (its form, its preview after the delivery policy,
scheduling it as ``lifecycle broadcast start`` does), one broadcast's progress and ledger with
its pause / resume / cancel forms, and its money review. State changes are POST forms
carrying the session's CSRF token; the preview only reads (a GET)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

import compose
import kinds
from activities.policy import DeliveryRules
from audiences.audience import Audience
from audiences.saved import named_audiences
from console.deps import Console, ConsoleDep, base
from devstack.broadcast_view import ledger_line, review_text
from message_templates.errors import TemplateError
from store.broadcast_money import broadcast_money
from store.broadcasts import FINAL_STATUSES, held_sends, list_broadcasts, message_counts
from store.db import SessionFactory
from store.money import Costs
from triggers.broadcast_preview import local_instant, preview
from triggers.broadcasts import (
    SIGNALS,
    BroadcastError,
    BroadcastPlan,
    decided,
    get_broadcast,
    live_progress,
    plan_broadcast,
    signal_broadcast,
    start_broadcast,
    summary,
)

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger(__name__)

router = APIRouter()

# The new-broadcast form's fields, carried from the preview to the schedule form.
FIELDS = (
    *("name", "audience", "template", "channel", "send_at", "timezone"),
    *("rate", "holdout", "topic"),
)
# The attribution window of the money review (``broadcast status``'s default).
REVIEW_WINDOW = timedelta(days=7)
# A broadcast's page reloads this often (seconds) until it ends: progress without script.
REFRESH = 5
# How long a page waits for the workflow's progress (a worker answers the query).
ASK_FOR = 3.0
# What a preview's outcomes mean, in the order the policy asks them.
OUTCOMES = {
    "held_out": "held out (the broadcast's holdout, sent nothing)",
    "global_control": "in the global control group (no marketing)",
    "unsubscribed": "unsubscribed from this channel",
    "unreachable": "unreachable (no address on this channel)",
    "frequency_cap": "over a frequency cap",
    "quiet_hours": "in quiet hours at that time (held until morning in their zone)",
}
NOTICES = {
    "scheduled": "Scheduled: the broadcast starts at its send time.",
    "pause": "Pause sent: nothing more is sent until it is resumed (held, not lost).",
    "resume": "Resume sent: the broadcast sends again.",
    "cancel": "Cancel sent: unsent recipients are closed as skipped (cancelled); what was "
    "sent stays sent.",
}


async def get_sessions(request: Request) -> SessionFactory:
    sessions: SessionFactory = request.app.state.sessions
    return sessions


SessionsDep = Annotated[SessionFactory, Depends(get_sessions)]


@router.get("/broadcasts")
def broadcasts(request: Request, console: ConsoleDep, sessions: SessionsDep) -> Response:
    def load() -> dict[str, Any]:
        with sessions() as session:
            return {"title": "Broadcasts", "broadcasts": list_broadcasts(session)}

    return console.show(request, "broadcasts.html.j2", "broadcasts", load)


def _choices(console: Console, sessions: SessionFactory) -> dict[str, Any]:
    """The form's choices: the shipped and saved audiences, templates with their channel,
    channels."""
    renderer = compose.renderer(console.settings)
    templates = []
    for name in renderer.names():
        try:
            templates.append((name, renderer.channel_of(name)))
        except TemplateError:  # a malformed template is the Templates page's to show
            continue
    return {
        "audiences": [(a.id, a.name) for a in _audiences(sessions).values()],
        "templates": templates,
        "channels": kinds.names(),
    }


def _audiences(sessions: SessionFactory) -> dict[str, Audience]:
    with sessions() as session:
        return named_audiences(session)


def _plan(console: Console, sessions: SessionFactory, form: dict[str, str]) -> BroadcastPlan:
    """The form checked as ``broadcast start`` checks its flags (a shipped or saved
    audience's name only: the console reads no file a form names)."""
    if form.get("audience", "") not in _audiences(sessions):
        raise BroadcastError(
            f"audience {form.get('audience', '')!r}: choose a shipped or saved audience"
        )
    zone = form.get("timezone") or console.settings.default_timezone
    try:
        return plan_broadcast(
            compose.renderer(console.settings),
            audience=form["audience"],
            template=form.get("template", ""),
            channel=form.get("channel", ""),
            at=local_instant(form.get("send_at", ""), zone) or None,
            rate=form.get("rate") or None,
            name=form.get("name") or None,
            topic=form.get("topic") or "marketing",
            now=console.now(),
            holdout=form.get("holdout") or None,
            sessions=sessions,
        )
    except BroadcastError as exc:  # the CLI's words, named as the form's fields
        said = str(exc).removeprefix("--")
        raise BroadcastError(f"send time{said[2:]}" if said.startswith("at ") else said) from None


def _new_page(
    console: Console, sessions: SessionFactory, form: dict[str, str], *, asked: bool
) -> dict[str, Any]:
    """The form, and when ``asked``, the preview of what it plans (or why it cannot)."""
    form = {key: form.get(key, "") for key in FIELDS}
    form["timezone"] = form["timezone"] or console.settings.default_timezone
    form["topic"] = form["topic"] or "marketing"
    page: dict[str, Any] = {"title": "New broadcast", "form": form, "error": "", "shown": None}
    page |= _choices(console, sessions)
    if not asked:
        return page
    try:
        plan = _plan(console, sessions, form)
    except BroadcastError as exc:
        page["error"] = str(exc)
        return page
    page["plan"] = plan
    page["shown"] = shown = preview(
        sessions,
        plan,
        at=max(plan.send_at, console.now()),
        rules=DeliveryRules.from_settings(console.settings),
        channel_rate=console.settings.broadcast_rate_for(plan.channel),
    )
    page["outcomes"] = [
        (reason, OUTCOMES.get(reason, reason), shown.estimate(n))
        for reason, n in sorted(
            (shown.skipped | shown.deferred).items(), key=lambda item: _order_of(item[0])
        )
    ]
    page["duration"] = _duration(shown.duration)
    return page


def _order_of(reason: str) -> int:
    return list(OUTCOMES).index(reason) if reason in OUTCOMES else len(OUTCOMES)


def _duration(span: timedelta | None) -> str:
    """``about 2 h 5 min``; ``under a minute``; None: no rate limits the sends."""
    if span is None:
        return "as fast as the channel allows (no rate limits it)"
    minutes = round(span.total_seconds() / 60)
    if minutes < 1:
        return f"{int(span.total_seconds())} s"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min" if hours else f"about {minutes} min"


@router.get("/broadcasts/new")
async def new(request: Request, console: ConsoleDep, sessions: SessionsDep) -> Response:
    session = console.logged_in(request)
    form = dict(request.query_params)
    page = await run_in_threadpool(_new_page, console, sessions, form, asked="preview" in form)
    status = 400 if page["error"] else 200
    return console.html(
        request,
        "broadcast_new.html.j2",
        session=session,
        section="broadcasts",
        status_code=status,
        **page,
    )


async def _client(console: Console) -> Client:
    """The console's Temporal client; 503 when Temporal cannot be reached."""
    assert console.temporal is not None
    try:
        return await console.temporal()
    except RuntimeError as exc:
        address = console.settings.temporal_address
        raise StarletteHTTPException(503, f"Cannot reach Temporal at {address}: {exc}") from None


@router.post("/broadcasts")
async def schedule(request: Request, console: ConsoleDep, sessions: SessionsDep) -> Response:
    form = await console.checked_form(request)
    try:
        plan = await run_in_threadpool(_plan, console, sessions, form)
    except BroadcastError as exc:
        page = await run_in_threadpool(_new_page, console, sessions, form, asked=False)
        page["error"] = str(exc)
        return console.html(
            request,
            "broadcast_new.html.j2",
            session=console.logged_in(request),
            section="broadcasts",
            status_code=400,
            **page,
        )
    broadcast_id = await start_broadcast(
        await _client(console),
        sessions,
        plan,
        task_queue=console.settings.task_queue,
        now=console.now(),
        channel_rate=console.settings.broadcast_rate_for(plan.channel),
    )
    log.info("console: broadcast %s scheduled (%s)", broadcast_id, plan.name)
    return RedirectResponse(
        f"{base(request)}/broadcasts/{broadcast_id}?did=scheduled", status_code=303
    )


def _broadcast_page(
    console: Console, sessions: SessionFactory, broadcast_id: int
) -> dict[str, Any] | None:
    """A broadcast's row, ledger (counts by status and reason, held sends) and money review."""
    try:
        row = get_broadcast(sessions, broadcast_id)
    except BroadcastError:
        return None
    with sessions() as session:
        counts = message_counts(session, broadcast_id=broadcast_id)
        held, next_held = held_sends(session, broadcast_id=broadcast_id)
        review = broadcast_money(
            session,
            broadcast_id=broadcast_id,
            costs=Costs.of(console.settings),
            now=console.now(),
            window=REVIEW_WINDOW,
        )
    return {
        "title": f"Broadcast {row.id}: {row.name}",
        "broadcast": row,
        "final": row.status in FINAL_STATUSES,
        "counts": sorted(counts.items(), key=str),
        "ledger": ledger_line(row, counts),
        "held": held,
        "next_held": next_held,
        "review": review_text(review) if counts else "",
        "review_closed": review.closed,
    }


@router.get("/broadcasts/{broadcast_id}")
async def broadcast(
    request: Request, console: ConsoleDep, sessions: SessionsDep, broadcast_id: int, did: str = ""
) -> Response:
    session = console.logged_in(request)
    page = await run_in_threadpool(_broadcast_page, console, sessions, broadcast_id)
    if page is None:
        raise StarletteHTTPException(404, f"No broadcast {broadcast_id}.")
    progress = None
    if not page["final"]:
        try:
            client = await _client(console)
            progress = await asyncio.wait_for(live_progress(client, broadcast_id), ASK_FOR)
        except TimeoutError:
            page["progress_error"] = "Progress unavailable: no worker answered; is one running?"
        except (RuntimeError, RPCError, StarletteHTTPException) as exc:
            page["progress_error"] = f"Progress unavailable: {getattr(exc, 'detail', exc)}"
    if progress is not None:
        page["progress"] = {"summary": summary(progress), "decided": decided(progress)}
    return console.html(
        request,
        "broadcast.html.j2",
        session=session,
        section="broadcasts",
        notice=NOTICES.get(did, ""),
        refresh_after=None if page["final"] else REFRESH,
        signals=list(SIGNALS),
        **page,
    )


@router.post("/broadcasts/{broadcast_id}/{signal}")
async def steer(
    request: Request, console: ConsoleDep, sessions: SessionsDep, broadcast_id: int, signal: str
) -> Response:
    """Pause, resume or cancel, as ``lifecycle broadcast pause|resume|cancel`` does."""
    await console.checked_form(request)
    if signal not in SIGNALS:
        raise StarletteHTTPException(404, f"No action {signal!r}: pause, resume or cancel.")
    try:
        row = get_broadcast(sessions, broadcast_id)
    except BroadcastError as exc:
        raise StarletteHTTPException(404, str(exc)) from None
    try:
        await signal_broadcast(await _client(console), row, signal)
    except BroadcastError as exc:
        raise StarletteHTTPException(409, str(exc)) from None
    log.info("console: broadcast %s: %s sent", broadcast_id, signal)
    return RedirectResponse(
        f"{base(request)}/broadcasts/{broadcast_id}?{urlencode({'did': signal})}", status_code=303
    )
