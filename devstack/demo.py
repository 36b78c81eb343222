"""``lifecycle demo``: the 7-day new-user coupon journey for a synthetic population.

Everything is real but the clock: events go in through the HTTP API (in process), the router
starts one ``JourneyWorkflow`` per user on the Temporal time-skipping server, the worker
sends through the outbox into a fresh SQLite file. Eight simulated days take seconds.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import func, select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from activities.profiles import next_local_time
from config import Settings, package_binary
from devstack.views import print_report
from journeys.validate import load_journey, shipped_journey_files
from store.db import SessionFactory, make_engine, make_session_factory, transaction
from store.journeys import publish
from store.migrate import upgrade
from store.models import Enrollment, Message
from store.reports import journey_report, user_timeline
from triggers.api import create_app
from triggers.router import JourneyRouter
from worker import running_worker

JOURNEY = "new_user_coupon"
TIMEZONES = ["Asia/Shanghai"] * 8 + ["Asia/Hong_Kong", "America/Los_Angeles"]
# A small behaviour model: a daily chance to order, higher the day after a message arrives.
BASE_DAILY_ORDER = 0.04
AFTER_MESSAGE_DAILY_ORDER = 0.12


@dataclass
class DemoResult:
    users: int
    entered: int
    converted: int
    sample_user: str | None


def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs only errors (the test server lacks some capabilities the
    SDK warns about, which would drown the summary)."""
    return Runtime(
        telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR")))
    )


def _population(rng: random.Random, n: int) -> list[dict[str, Any]]:
    people = []
    for i in range(n):
        english = rng.random() < 0.2
        people.append(
            {
                "userId": f"demo-{i:05d}",
                "traits": {
                    "name": f"User {i}" if english else rng.choice(["小王", "小李", "阿敏", ""]),
                    "phone": f"+86138{rng.randrange(10**8):08d}",
                    "email": f"user{i}@example.com",
                    "locale": "en" if english else "zh-CN",
                    "timezone": rng.choice(TIMEZONES),
                    "member_tier": rng.choice(["普通", "普通", "银卡", "金卡"]),
                    "push_token": f"fcm-demo-{i:05d}",
                },
            }
        )
    return people


async def _post_batch(http: httpx.AsyncClient, key: str, batch: list[dict[str, Any]]) -> None:
    for start in range(0, len(batch), 200):
        resp = await http.post(
            "/v1/batch", json={"batch": batch[start : start + 200]}, auth=(key, "")
        )
        resp.raise_for_status()


def _track(user_id: str, event: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user_id,
        "event": event,
        "properties": props,
        "timestamp": at.isoformat(),
        "messageId": str(uuid.uuid4()),
    }


def _settled_first_sends(factory: SessionFactory) -> tuple[int, int]:
    with factory() as session:
        entered = session.scalar(select(func.count()).select_from(Enrollment)) or 0
        settled = (
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.step_id == "welcome_sms", Message.status != "pending")
            )
            or 0
        )
    return entered, settled


def _open_runs(factory: SessionFactory) -> int:
    with factory() as session:
        stmt = select(func.count()).select_from(Enrollment).where(Enrollment.exited_at.is_(None))
        return session.scalar(stmt) or 0


def _messaged_since(factory: SessionFactory, since: datetime) -> set[str]:
    with factory() as session:
        stmt = select(Message.user_id).where(Message.status == "sent", Message.sent_at >= since)
        return {u for u in session.scalars(stmt) if u}


async def _until(predicate: Any, what: str, timeout: float = 60) -> None:
    for _ in range(int(timeout * 20)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"demo stalled waiting for {what}")


async def run_demo(
    settings: Settings, *, users: int = 200, seed: int = 7, console: Console | None = None
) -> DemoResult:
    """Run the demo and print its summary; returns the headline numbers."""
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
    db_path = Path(settings.data_dir) / "demo.db"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    factory = make_session_factory(engine)
    path = next(p for p in shipped_journey_files() if p.stem == JOURNEY)
    journey = load_journey(path)

    console.print(f"[bold]lifecycle demo[/]: {users} users through “{journey.name}”")
    console.print("  starting the Temporal time-skipping server …")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(package_binary("temporal-test-server")),
        runtime=quiet_runtime(),
    )
    task_queue = f"demo-{uuid.uuid4().hex[:8]}"
    try:
        # Signups at 10:00 in Shanghai: the story reads the same whenever the demo runs,
        # and the day's first messages are not held by quiet hours.
        start = await env.get_current_time()
        await env.sleep(next_local_time(start, "10:00", "Asia/Shanghai") - start)
        t0 = await env.get_current_time()
        with transaction(factory) as session:
            publish(session, journey=journey, source=path.read_text(), now=t0)
        router = JourneyRouter(
            factory=factory,
            client=env.client,
            task_queue=task_queue,
            max_trigger_age=settings.max_trigger_age,
        )
        app = create_app(settings, session_factory=factory, router=router)
        transport = httpx.ASGITransport(app=app)
        async with (
            running_worker(env.client, settings, factory, task_queue=task_queue),
            httpx.AsyncClient(transport=transport, base_url="http://lifecycle") as http,
        ):
            people = _population(rng, users)
            calls = [{"type": "identify", "timestamp": t0.isoformat(), **p} for p in people]
            calls += [_track(p["userId"], "user_signed_up", t0, channel="app") for p in people]
            await _post_batch(http, settings.write_key, calls)
            console.print(f"  {users} signups posted to /v1/batch; journeys running …")
            await _until(lambda: _settled_first_sends(factory) == (users, users), "first sends")

            # Day by day: orders happen at mid-day ticks (day 0.5, 1.5, ... 6.5).
            ordered: set[str] = set()
            await env.sleep(timedelta(hours=12))
            for day in range(7):
                now = await env.get_current_time()
                recent = _messaged_since(factory, now - timedelta(days=1))
                orders = []
                for p in people:
                    uid = p["userId"]
                    chance = AFTER_MESSAGE_DAILY_ORDER if uid in recent else BASE_DAILY_ORDER
                    if uid not in ordered and rng.random() < chance:
                        ordered.add(uid)
                        orders.append(_track(uid, "order_placed", now, total=rng.randint(50, 400)))
                await _post_batch(http, settings.write_key, orders)
                await env.sleep(timedelta(days=1) if day < 6 else timedelta(days=2))
            await _until(lambda: _open_runs(factory) == 0, "every run to end")
    finally:
        await env.shutdown()

    return _summarise(factory, console, users, t0, sorted(ordered))


def _pick_sample(factory: SessionFactory, ordered: list[str]) -> str | None:
    """A treatment user who got all three messages and then ordered (the full story)."""
    with factory() as session:
        stmt = (
            select(Enrollment.user_id)
            .join(Message, Message.enrollment_id == Enrollment.id)
            .where(
                Enrollment.group == "treatment",
                Enrollment.exit_reason == "converted",
                Message.status == "sent",
            )
            .group_by(Enrollment.user_id)
            .having(func.count() == 3)
            .order_by(Enrollment.user_id)
        )
        return session.scalars(stmt).first() or (ordered[0] if ordered else None)


def _summarise(
    factory: SessionFactory, console: Console, users: int, t0: datetime, ordered: list[str]
) -> DemoResult:
    sample = _pick_sample(factory, ordered)
    with factory() as session:
        report = journey_report(session, journey_id=JOURNEY)
        timeline = user_timeline(session, user_id=sample) if sample else []

    if sample:
        console.print(f"\n[bold]Timeline of {sample}[/] (day = simulated days since signup)")
        for entry in timeline:
            day = (entry.at - t0).total_seconds() / 86400
            console.print(
                f"  day {day:4.1f}  {entry.at:%m-%d %H:%M} UTC  {entry.kind:8}  {entry.text}"
            )

    console.print()
    print_report(report, console, goal="order within 7 days")
    entered = sum(report.entered.values())
    converted = sum(report.converted.values())
    return DemoResult(users=users, entered=entered, converted=converted, sample_user=sample)
