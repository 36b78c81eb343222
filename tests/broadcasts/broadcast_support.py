"""Helpers for broadcast tests: an audience of users, a broadcast started as the CLI does,
the workflow's histories across continue-as-new."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from temporalio.client import Client, WorkflowExecutionStatus

from config import Settings
from journey_support import run_history_lengths
from message_templates.render import TemplateRenderer
from store.db import SessionFactory
from store.models import Broadcast, Message, OutboxMessage, User
from support import assert_eventually_async
from triggers.broadcasts import BroadcastPlan, plan_broadcast, start_broadcast, store_plan
from workflows.contracts import broadcast_workflow_id

TEMPLATE = "sale_preheat_sms"


def add_members(
    factory: SessionFactory, tier: str, count: int, now: datetime, **fields: Any
) -> list[str]:
    """``count`` users in tier ``tier`` (reachable by SMS, email and push unless ``fields``
    say otherwise, or with ``id=...``); their ids, in id order."""
    one_id = fields.pop("id", None)  # one user of a given id
    ids = [one_id] if one_id else [f"{tier}-{i:06d}" for i in range(count)]
    rows: list[dict[str, Any]] = [
        {
            "id": user_id,
            "phone": "+8613800138000",
            "email": f"{user_id}@example.com",
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
            "member_tier": tier,
            "traits": {},
            "tags": [],
            "created_at": now,
            "updated_at": now,
        }
        | fields
        for user_id in ids
    ]
    with factory.begin() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(User), rows[start : start + 5000])
    return ids


def audience_file(tmp_path: Path, tier: str) -> Path:
    path = tmp_path / f"{tier}.yaml"
    path.write_text(f"id: members\nname: Tier {tier}\nrule:\n  tier: {tier}\n")
    return path


def worker_settings(**overrides: Any) -> Settings:
    """Test settings: quiet hours off unless asked, SMS fast enough not to wait on."""
    values: dict[str, Any] = {
        "environment": "development",
        "sms_rate_per_second": 10_000,
        "sms_broadcast_rate_per_second": 10_000,
    }
    return Settings(**(values | overrides))


def fresh_ids(factory: SessionFactory, now: datetime) -> None:
    """Make the next broadcast ids unlike any other test's: workflow ids are
    ``broadcast:{id}`` on a Temporal server every test shares, but each test's database
    counts from 1."""
    base = uuid.uuid4().int % 10**12
    with factory.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT setval(pg_get_serial_sequence('broadcasts', 'id'), :n)"), {"n": base}
            )
            return
        session.add(
            Broadcast(
                id=base,
                name="id spacer",
                audience={},
                template=TEMPLATE,
                channel="sms",
                send_at=now,
                status="cancelled",
                workflow_id=f"spacer:{base}",
                created_at=now,
            )
        )


def sms_plan(audience: Path, now: datetime, holdout: str | None = None) -> BroadcastPlan:
    """A marketing broadcast of ``TEMPLATE`` by SMS to ``audience``, checked as the CLI
    checks one (``holdout`` as typed after ``--holdout``)."""
    return plan_broadcast(
        TemplateRenderer(),
        audience=str(audience),
        template=TEMPLATE,
        channel="sms",
        at=None,
        rate=None,
        name=None,
        topic="marketing",
        now=now,
        holdout=holdout,
    )


def stored_broadcast(factory: SessionFactory, audience: Path, now: datetime) -> int:
    """A broadcast of ``TEMPLATE`` by SMS to ``audience``, checked and stored as the CLI
    does, its workflow not started (tests run its activities by hand); its id."""
    fresh_ids(factory, now)
    with factory.begin() as session:
        return store_plan(session, sms_plan(audience, now), now=now).id


async def start(
    client: Client,
    factory: SessionFactory,
    task_queue: str,
    audience: Path,
    now: datetime,
    *,
    at: str | None = None,
    rate: str | None = None,
    template: str = TEMPLATE,
    channel: str = "sms",
    channel_rate: float | None = None,
) -> int:
    """Check and start a broadcast exactly as ``lifecycle broadcast start`` does."""
    fresh_ids(factory, now)
    plan = plan_broadcast(
        TemplateRenderer(),
        audience=str(audience),
        template=template,
        channel=channel,
        at=at,
        rate=rate,
        name=None,
        topic="marketing",
        now=now,
    )
    return await start_broadcast(
        client, factory, plan, task_queue=task_queue, now=now, channel_rate=channel_rate
    )


def broadcast_row(factory: SessionFactory, broadcast_id: int) -> Broadcast:
    with factory() as session:
        row = session.get(Broadcast, broadcast_id)
    assert row is not None
    return row


def sends(factory: SessionFactory, broadcast_id: int) -> dict[str, Message]:
    """The broadcast's ledger rows by user id."""
    with factory() as session:
        rows = session.scalars(select(Message).where(Message.broadcast_id == broadcast_id))
        return {row.user_id or "": row for row in rows}


def outbox_keys(factory: SessionFactory) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(OutboxMessage.message_key)))


async def history_lengths(client: Client, broadcast_id: int, first_run_id: str) -> list[int]:
    """The number of events of every run of the broadcast's workflow, from its first run
    (the prefix of its ledger keys) along continue-as-new."""
    return await run_history_lengths(client, broadcast_workflow_id(broadcast_id), first_run_id)


async def closed_result(handle: Any, timeout: float = 600) -> Any:
    """The workflow's result once its last run has closed, polling in real time (a long
    wait on ``result()`` can come back empty from the time-skipping server)."""

    async def closed() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await assert_eventually_async(
        closed, timeout=timeout, interval=0.5, message=f"{handle.id} closed"
    )
    return await handle.result()
