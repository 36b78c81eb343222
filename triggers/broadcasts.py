"""Starting and steering broadcasts from a client (the CLI): check a request, create the
``broadcasts`` row, start ``BroadcastWorkflow`` as ``broadcast:{id}``, signal and watch it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from audiences.audience import SHIPPED, Audience, audience_from_data
from audiences.rules import AudienceError
from config import CHANNEL_KINDS
from message_templates.render import TemplateRenderer
from message_templates.sample import sample_context
from store.broadcasts import FINAL_STATUSES, create_broadcast
from store.db import SessionFactory, transaction
from store.models import Broadcast
from store.saved_audiences import latest_saved
from workflows.broadcast import BroadcastWorkflow
from workflows.broadcast_contracts import (
    BROADCAST_BATCH,
    BroadcastInput,
    BroadcastProgress,
    broadcast_batch_size,
)
from workflows.ids import broadcast_workflow_id

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_PER_SECOND = {"s": 1, "m": 60, "h": 3600}
# The control signals, by the name a person gives.
SIGNALS = {
    "pause": BroadcastWorkflow.pause,
    "resume": BroadcastWorkflow.resume,
    "cancel": BroadcastWorkflow.cancel,
}


class BroadcastError(ValueError):
    """A request that cannot become a broadcast; the message names the flag or file."""


@dataclass
class BroadcastPlan:
    """A checked request, ready to be stored and started."""

    name: str
    audience: Audience
    audience_data: Any
    audience_source: str
    template: str
    channel: str
    topic: str
    send_at: datetime
    rate_per_second: float | None
    holdout: float = 0  # percent of the audience held out for the review


def parse_rate(text: str) -> float:
    """``50/s``, ``3000/m`` or ``1000/h`` as messages per second."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise BroadcastError(f"--rate {text!r}: give messages per second, e.g. 50/s (or 3000/m)")
    return float(match.group(1)) / _PER_SECOND[match.group(2)]


def parse_holdout(text: str) -> float:
    """A percent of the audience to hold out, 0 to 50 (as a journey's ``holdout``)."""
    try:
        percent = float(text)
    except ValueError:
        percent = math.nan
    if not 0 <= percent <= 50:
        raise BroadcastError(
            f"--holdout {text!r}: a percent of the audience from 0 to 50, e.g. 5 (or 2.5)"
        )
    return percent


def parse_at(text: str, *, now: datetime) -> datetime:
    """An ISO-8601 instant with an offset, not in the past."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise BroadcastError(
            f"--at {text!r}: not an ISO-8601 instant, e.g. 2026-06-15T20:00+08:00"
        ) from None
    if at.tzinfo is None:
        raise BroadcastError(f"--at {text!r}: give an offset, e.g. {text}+08:00 (or Z for UTC)")
    if at < now - timedelta(minutes=1):
        raise BroadcastError(f"--at {text!r}: in the past (now is {now:%Y-%m-%dT%H:%M}Z)")
    return at.astimezone(UTC)


def load_audience_file(
    spec: str, *, sessions: SessionFactory | None = None
) -> tuple[Audience, Any, str]:
    """An audience file (or a shipped audience's id, or with ``sessions`` a saved audience's
    name): the audience, its data as stored in the ``broadcasts`` row, and its source."""
    path = Path(spec)
    if not path.is_file():
        named = re.fullmatch(r"[a-z][a-z0-9_]*", spec) is not None
        shipped = SHIPPED / f"{spec}.yaml"
        if named and shipped.is_file():
            path = shipped
        elif named and sessions is not None and (saved := _saved(sessions, spec)) is not None:
            return saved
        else:
            known = "a shipped or saved audience" if sessions is not None else "a shipped audience"
            raise BroadcastError(f"--audience {spec}: no such file (nor {known})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        audience = audience_from_data(data, source=str(path))
    except OSError as exc:
        raise BroadcastError(f"--audience {path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise BroadcastError(f"--audience {path}: not valid YAML: {exc}".splitlines()[0]) from None
    except AudienceError as exc:
        raise BroadcastError(str(exc)) from None
    # Stored as JSON: dates YAML may have read as objects become their text.
    return audience, json.loads(json.dumps(data, default=str)), str(path)


def _saved(sessions: SessionFactory, name: str) -> tuple[Audience, Any, str] | None:
    """The latest saved version of the audience ``name``, frozen as a file's data is."""
    with sessions() as session:
        row = latest_saved(session, name=name)
    if row is None:
        return None
    source = f"saved audience {row.name} v{row.version}"
    try:
        rule = yaml.safe_load(row.source)
        data = {"id": row.name, "name": row.name, "description": row.note, "rule": rule}
        audience = audience_from_data(data, source=source)
    except (yaml.YAMLError, AudienceError) as exc:
        raise BroadcastError(f"--audience {name}: {source}: {exc}".splitlines()[0]) from None
    return audience, json.loads(json.dumps(data, default=str)), source


def broadcast_context() -> dict[str, Any]:
    """A sample render context as a broadcast send has it: a user, no coupon, no trigger
    properties."""
    context = sample_context()
    now = datetime.now(UTC)
    context["coupon"] = None
    context["trigger"] = {"event": "broadcast", "properties": {}, "timestamp": now}
    return context


def check_template(renderer: TemplateRenderer, template: str, channel: str) -> None:
    """The template exists, is written for ``channel`` and renders for a sample profile
    with no coupon (every locale)."""
    problems = renderer.check(template, channel=channel, context=broadcast_context())
    if problems:
        problem = problems[0].removeprefix(f"{template}: ")  # named once
        raise BroadcastError(f"--template {template}: {problem}")


def plan_broadcast(
    renderer: TemplateRenderer,
    *,
    audience: str,
    template: str,
    channel: str,
    at: str | None,
    rate: str | None,
    name: str | None,
    topic: str,
    now: datetime,
    holdout: str | None = None,
    sessions: SessionFactory | None = None,
) -> BroadcastPlan:
    """Check everything a broadcast needs before anything is stored or started; with
    ``sessions``, ``audience`` may name a saved audience (its latest version)."""
    if channel not in CHANNEL_KINDS:
        raise BroadcastError(f"--channel {channel!r}: one of {', '.join(CHANNEL_KINDS)}")
    loaded, data, source = load_audience_file(audience, sessions=sessions)
    check_template(renderer, template, channel)
    return BroadcastPlan(
        name=name or f"{template} to {loaded.id}",
        audience=loaded,
        audience_data=data,
        audience_source=source,
        template=template,
        channel=channel,
        topic=topic,
        send_at=parse_at(at, now=now) if at else now,
        rate_per_second=parse_rate(rate) if rate else None,
        holdout=parse_holdout(holdout) if holdout else 0,
    )


def store_plan(session: Session, plan: BroadcastPlan, *, now: datetime) -> Broadcast:
    """The ``broadcasts`` row of a checked plan (``scheduled``; the caller commits)."""
    return create_broadcast(
        session,
        name=plan.name,
        audience=plan.audience_data,
        audience_source=plan.audience_source,
        template=plan.template,
        channel=plan.channel,
        topic=plan.topic,
        send_at=plan.send_at,
        rate_per_second=plan.rate_per_second,
        now=now,
        workflow_id=broadcast_workflow_id,
        holdout=plan.holdout,
    )


async def start_broadcast(
    client: Client,
    factory: SessionFactory,
    plan: BroadcastPlan,
    *,
    task_queue: str,
    now: datetime,
    channel_rate: float | None = None,
) -> int:
    """Store the broadcast and start its workflow (the row is not kept if Temporal refuses).
    ``channel_rate``: the channel's broadcast rate the workers enforce (settings), which
    sizes the batches. Returns the broadcast's id."""
    with transaction(factory) as session:
        row = store_plan(session, plan, now=now)
        await client.start_workflow(
            BroadcastWorkflow.run,
            BroadcastInput(
                broadcast_id=row.id,
                channel=plan.channel,
                template=plan.template,
                send_at=plan.send_at,
                topic=plan.topic,
                rate_per_second=plan.rate_per_second,
                batch_size=broadcast_batch_size(channel_rate) if channel_rate else BROADCAST_BATCH,
            ),
            id=row.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        return row.id


def get_broadcast(factory: SessionFactory, broadcast_id: int) -> Broadcast:
    with factory() as session:
        row = session.get(Broadcast, broadcast_id)
    if row is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    return row


async def signal_broadcast(client: Client, row: Broadcast, signal: str) -> None:
    """``pause``, ``resume`` or ``cancel`` a broadcast that has not finished."""
    if signal not in SIGNALS:
        raise ValueError(signal)
    if row.status in FINAL_STATUSES:
        raise BroadcastError(f"broadcast {row.id} is {row.status}: nothing to {signal}")
    handle = client.get_workflow_handle_for(BroadcastWorkflow.run, broadcast_workflow_id(row.id))
    try:
        await handle.signal(SIGNALS[signal])
    except RPCError as exc:
        raise BroadcastError(f"broadcast {row.id}: {exc.message}") from None


async def live_progress(client: Client, broadcast_id: int) -> BroadcastProgress | None:
    """The running workflow's progress, or None once it has closed."""
    wid = broadcast_workflow_id(broadcast_id)
    handle = client.get_workflow_handle_for(BroadcastWorkflow.run, wid)
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    return await handle.query(BroadcastWorkflow.progress)


def decided(progress: BroadcastProgress) -> int:
    """Recipients whose send is decided: sent, skipped or failed."""
    return progress.sent + progress.failed + sum(progress.skipped.values())


def summary(progress: BroadcastProgress) -> str:
    """``running · 300 paged · 280 sent · skipped: unsubscribed 12 · 8 held``"""
    parts = [progress.status, f"{progress.paged} paged", f"{progress.sent} sent"]
    if progress.skipped:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(progress.skipped.items()))
        parts.append(f"skipped: {reasons}")
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if progress.deferred:
        parts.append(f"{progress.deferred} held for later")
    return " · ".join(parts)


async def follow(client: Client, broadcast_id: int, *, total: int, every: float = 0.5) -> None:
    """A progress bar (rich) until the broadcast's workflow closes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("broadcast {task.fields[id]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[summary]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("send", total=max(total, 1), id=broadcast_id, summary="starting")
        handle = client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        while True:
            progress = await live_progress(client, broadcast_id)
            if progress is None:
                break
            bar.update(task, completed=decided(progress), summary=summary(progress))
            await asyncio.sleep(every)
        final = await handle.result()
        bar.update(task, total=max(decided(final), 1), completed=decided(final))
        bar.update(task, summary=summary(final))
