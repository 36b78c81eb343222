"""Helpers for tests that run journeys: publish, create users, store and route events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from journeys.validate import load_journey, shipped_journey_files
from store.db import SessionFactory, transaction
from store.journeys import publish
from store.models import Enrollment, Event, Message, OutboxMessage, PushToken, User
from support import assert_eventually_async
from workflows.ids import journey_workflow_id


def publish_shipped(factory: SessionFactory, journey_id: str, now: datetime) -> None:
    path = next(p for p in shipped_journey_files() if p.stem == journey_id)
    with transaction(factory) as session:
        publish(session, journey=load_journey(path), source=path.read_text(), now=now)


def add_user(factory: SessionFactory, user_id: str, now: datetime, **fields: Any) -> None:
    values = {
        "phone": "+8613800138000",
        "email": f"{user_id}@example.com",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
    } | fields
    token = values.pop("push_token", f"token-{user_id}")
    with transaction(factory) as session:
        session.add(User(id=user_id, created_at=now, updated_at=now, traits={}, tags=[], **values))
        session.flush()
        if token:
            session.add(PushToken(user_id=user_id, token=token, platform="android", created_at=now))


def store_event(
    factory: SessionFactory,
    user_id: str,
    event: str,
    at: datetime,
    *,
    message_id: str | None = None,
    properties: dict[str, Any] | None = None,
) -> int:
    with transaction(factory) as session:
        row = Event(
            message_id=message_id or str(uuid.uuid4()),
            type="track",
            user_id=user_id,
            event=event,
            properties=properties or {},
            context={},
            timestamp=at,
            received_at=at,
        )
        session.add(row)
        session.flush()
        return row.id


def ledger(factory: SessionFactory, user_id: str) -> list[Message]:
    with factory() as session:
        stmt = select(Message).where(Message.user_id == user_id).order_by(Message.id)
        return list(session.scalars(stmt))


def add_enrollment(
    factory: SessionFactory, user_id: str, now: datetime, journey_id: str = "new_user_coupon"
) -> int:
    """An open treatment-group enrollment of ``user_id`` in ``journey_id``; its id."""
    with transaction(factory) as session:
        enrollment = Enrollment(
            journey_id=journey_id,
            journey_version=1,
            user_id=user_id,
            group="treatment",
            workflow_id=journey_workflow_id(journey_id, user_id),
            entered_at=now,
        )
        session.add(enrollment)
        session.flush()
        return enrollment.id


def enrollments(factory: SessionFactory, user_id: str) -> list[Enrollment]:
    with factory() as session:
        stmt = select(Enrollment).where(Enrollment.user_id == user_id)
        return list(session.scalars(stmt))


def outbox(factory: SessionFactory) -> list[OutboxMessage]:
    with factory() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def user_in(
    group: str, prefix: str, journey_id: str = "new_user_coupon", percent: float = 10
) -> str:
    """A user id (starting with ``prefix``) that the holdout hash puts in ``group``."""
    from enrollment.router import holdout_group

    return next(
        u
        for i in range(10_000)
        if holdout_group(journey_id, u := f"{prefix}-{i}", percent) == group
    )


def publish_text(factory: SessionFactory, text: str, now: datetime) -> None:
    """Publish a journey written in the test (validated like a file, templates included)."""
    from journeys.validate import parse_journey

    with transaction(factory) as session:
        publish(session, journey=parse_journey(text, file="<test>"), source=text, now=now)


def router_for(env: Any, db: Any, task_queue: str, **kwargs: Any) -> Any:
    """The real router on ``env``'s Temporal, with no trigger too old (simulated clocks)."""
    from datetime import timedelta

    from enrollment.router import JourneyRouter

    return JourneyRouter(
        factory=db.factory,
        client=env.client,
        task_queue=task_queue,
        max_trigger_age=timedelta(days=3650),
        **kwargs,
    )


async def settled(db: Any, user_id: str, count: int, timeout: float = 20) -> None:
    """Wait in real time until ``count`` ledger rows of the user are decided (not pending or
    sending). Time-skipping servers do not skip while nobody waits on a result."""

    def decided() -> bool:
        rows = ledger(db.factory, user_id)
        assert len(rows) >= count and all(r.status not in ("pending", "sending") for r in rows), (
            f"{count} settled sends expected for {user_id}, ledger has {rows}"
        )
        return True

    await assert_eventually_async(decided, timeout=timeout)


async def at_rest(env: Any, factory: SessionFactory, user_id: str, timeout: float = 30) -> None:
    """Wait in real time until every open run of the user waits on a timer with nothing else
    in flight (no activity, no workflow task), so skipping time cannot overtake it. A fixed
    real-time pause is not enough on a busy machine."""
    from temporalio.api.enums.v1 import EventType

    done = {EventType.EVENT_TYPE_TIMER_FIRED, EventType.EVENT_TYPE_TIMER_CANCELED}

    async def resting(wid: str) -> bool:
        handle = env.client.get_workflow_handle(wid)
        described = (await handle.describe()).raw_description
        if described.pending_activities or described.HasField("pending_workflow_task"):
            return False
        events = [e async for e in handle.fetch_history_events()]
        started = {e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED}
        ended = {
            e.timer_fired_event_attributes.started_event_id
            or e.timer_canceled_event_attributes.started_event_id
            for e in events
            if e.event_type in done
        }
        return bool(started - ended)

    async def all_resting() -> bool:
        runs = [e.workflow_id for e in enrollments(factory, user_id) if e.exited_at is None]
        assert runs and all([await resting(wid) for wid in runs]), (
            f"runs of {user_id} not waiting on a timer: {runs}"
        )
        return True

    await assert_eventually_async(all_resting, timeout=timeout)


async def run_history_lengths(client: Any, workflow_id: str, first_run_id: str) -> list[int]:
    """The number of events of every run of a workflow, from its first run along
    continue-as-new."""
    from temporalio.api.enums.v1 import EventType

    lengths = []
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attributes = last.workflow_execution_continued_as_new_event_attributes
            run_id = attributes.new_execution_run_id
    return lengths
