"""Ingestion against the database: ``/v1/batch`` of plain events vs a bulk INSERT of the rows.

On a fresh database (a private PostgreSQL schema, dropped afterwards, or a SQLite file) with
the shipped journeys published and a Temporal dev server for the router, in one run:

- **baseline**: the same rows the API would store, inserted into the same ``events`` table
  with SQLAlchemy Core, 100 rows per statement, by ``--clients`` threads at once;
- **api**: ``lifecycle api`` as its own process, ``--clients`` threads posting ``/v1/batch``
  bodies of 100 ``product_viewed`` track calls (an event no shipped journey acts on, so only
  the ingestion path is measured), each for a user of its own among ``--users``.

With ``--signups`` the calls are ``user_signed_up`` of new users (each starts a
``new_user_coupon`` run) and the baseline is the bare Temporal side of it: the client's
``start_workflow`` with a start signal, of a workflow type no worker runs, one per user, from
8 batches at once with at most 16 in flight per batch (the router's bound); no worker runs
in either (goal ≥ 0.8).

Rounds alternate A B B A, each on an emptied table. Prints both rates per round, the ratio
api / baseline (goal ≥ 0.5 per API process), the API's CPU per event and the batch latency.
Measure while nothing else runs: a loaded machine flatters the slower side.

    .venv/bin/python bench/ingest.py                         # PostgreSQL, 20,000 events/round
    .venv/bin/python bench/ingest.py --database sqlite --events 5000
    .venv/bin/python bench/ingest.py --signups --events 2000 # triggering events
    .venv/bin/python bench/ingest.py --small-calls           # + track calls beside full batches
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))
for extra in (ROOT / "tests", _HERE):
    if str(extra) not in sys.path:
        sys.path.append(str(extra))

import chaos_parts  # noqa: E402 - first: importing chaos_kill_worker takes bench/ off the path
import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from chaos_kill_worker import free_port, temporal_dev_server  # noqa: E402

from journeys.validate import load_journey, shipped_journey_files  # noqa: E402
from store.db import make_engine, make_session_factory, transaction  # noqa: E402
from store.journeys import publish  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Event  # noqa: E402

BATCH = 100
WRITE_KEY = "dev-write-key"


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated database URL: a SQLite file, or a PostgreSQL schema of this run's own."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'ingest.db'}"
        upgrade(make_engine(url))
        yield url
        return
    schema = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(chaos_parts.pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{chaos_parts.pg_admin_url()}?options=-csearch_path%3D{schema}"
    try:
        upgrade(make_engine(url))
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def process_env(url: str, address: str, workdir: Path, task_queue: str) -> dict[str, str]:
    """The environment of the processes a bench starts: this run's database, dev server,
    folder and task queue, development settings, no ``LIFECYCLE_`` variable of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=url,
        TEMPORAL_ADDRESS=address,
        LIFECYCLE_ENVIRONMENT="development",
        LIFECYCLE_DATA_DIR=str(workdir),
        LIFECYCLE_LOG_FORMAT="text",
        LIFECYCLE_TASK_QUEUE=task_queue,
        LIFECYCLE_WRITE_KEY=WRITE_KEY,
    )
    return env


def calls(events: int, users: int, run: str, *, signups: bool = False) -> list[dict[str, Any]]:
    """``events`` track calls as a Segment client sends them, spread over ``users``; with
    ``signups``, one ``user_signed_up`` per new user."""
    now = datetime.now(UTC).isoformat()
    if signups:
        return [
            {
                "type": "track",
                "userId": f"u-{run}-{i:07d}",
                "event": "user_signed_up",
                "messageId": f"{run}-{i:08d}",
                "timestamp": now,
                "properties": {"channel": "app", "referrer": "search"},
                "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
            }
            for i in range(events)
        ]
    return [
        {
            "type": "track",
            "userId": f"u-{run}-{i % users:06d}",
            "event": "product_viewed",
            "messageId": f"{run}-{i:08d}",
            "timestamp": now,
            "properties": {"product_id": f"sku-{i % 500}", "category": "beauty", "price": 12900},
            "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
        }
        for i in range(events)
    ]


def rows_of(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``events`` rows the API stores for these calls."""
    now = datetime.now(UTC)
    return [
        {
            "message_id": c["messageId"],
            "type": "track",
            "user_id": c["userId"],
            "anonymous_id": None,
            "event": c["event"],
            "properties": c["properties"],
            "context": c["context"],
            "timestamp": now,
            "received_at": now,
            "routed_at": now,
        }
        for c in batch
    ]


def in_threads(batches: list[Any], clients: int, send: Callable[[Any], None]) -> list[float]:
    """``send`` every batch, ``clients`` at a time; the seconds each batch took."""
    todo = list(reversed(batches))
    lock = threading.Lock()
    took: list[float] = []
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                if not todo or errors:
                    return
                batch = todo.pop()
            started = time.perf_counter()
            try:
                send(batch)
            except BaseException as exc:  # reported after the round
                errors.append(exc)
                return
            with lock:
                took.append(time.perf_counter() - started)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return took


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its children (uvicorn's workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and I/O wait), so that
    what the listed processes do not account for (PostgreSQL's backends, the kernel) can be
    told per round."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def empty(url: str) -> None:
    with make_engine(url).begin() as conn:
        conn.execute(sa.text("DELETE FROM events"))
        conn.execute(sa.text("DELETE FROM enrollments"))
        conn.execute(sa.text("DELETE FROM users"))


def baseline_round(url: str, batches: list[list[dict[str, Any]]], clients: int) -> float:
    engine = make_engine(url, pool_size=clients, max_overflow=0)
    table: sa.Table = Event.__table__  # type: ignore[assignment]
    rows = [rows_of(b) for b in batches]

    def send(batch: list[dict[str, Any]]) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(table), batch)

    started = time.perf_counter()
    in_threads(rows, clients, send)
    took = time.perf_counter() - started
    engine.dispose()
    return took


def signal_start_round(address: str, batches: list[list[dict[str, Any]]], clients: int) -> float:
    """The bare Temporal side of a sign-up: ``start_workflow`` with a start signal, per user."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    queue = f"bare-{uuid.uuid4().hex[:6]}"

    async def run() -> float:
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        batch_slots = asyncio.Semaphore(clients)

        async def one_batch(batch: list[dict[str, Any]]) -> None:
            async with batch_slots:
                in_flight = asyncio.Semaphore(16)

                async def start(call: dict[str, Any]) -> None:
                    async with in_flight:
                        await client.start_workflow(
                            "BareSignup",
                            {"user_id": call["userId"], "properties": call["properties"]},
                            id=f"bare-{call['messageId']}",
                            task_queue=queue,
                            start_signal="event",
                            start_signal_args=[call],
                        )

                await asyncio.gather(*(start(c) for c in batch))

        started = time.perf_counter()
        await asyncio.gather(*(one_batch(b) for b in batches))
        return time.perf_counter() - started

    return asyncio.run(run())


def api_round(
    api: chaos_parts.ApiProcess, batches: list[list[dict[str, Any]]], clients: int
) -> tuple[float, float, list[float]]:
    pid = api.proc.pid if api.proc else 0
    local = threading.local()

    def send(batch: list[dict[str, Any]]) -> None:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=api.url, auth=(WRITE_KEY, ""), timeout=120)
        body = json.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()})
        resp = local.http.post("/v1/batch", content=body)
        if resp.status_code != 200 or "refused" in resp.json():
            raise RuntimeError(f"the API answered {resp.status_code}: {resp.text[:300]}")

    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    latencies = in_threads(batches, clients, send)
    took = time.perf_counter() - started
    return took, cpu_seconds(pid) - cpu0, latencies


def small_calls_beside_full_batches(api: chaos_parts.ApiProcess, clients: int) -> None:
    """Single ``track`` calls, one every 50 ms, alone and then while ``clients`` clients post
    full batches (as many calls as fit in 500 KB); prints the single calls' latencies."""
    run = uuid.uuid4().hex[:6]
    one = calls(1, 1, run)[0]
    sample = json.dumps({"batch": calls(100, 2000, f"{run}b"), "sentAt": one["timestamp"]})
    per_batch = int(100 * 500 * 1024 * 0.95 / len(sample))  # the API takes up to 500 KB
    stop = threading.Event()

    def singles(label: str, seconds: float) -> list[float]:
        took: list[float] = []
        with httpx.Client(base_url=api.url, auth=(WRITE_KEY, ""), timeout=120) as http:
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end and not (label == "beside" and stop.is_set()):
                n += 1
                body = {**one, "messageId": f"{run}-{label}-{n}", "userId": f"solo-{n % 50}"}
                started = time.perf_counter()
                resp = http.post("/v1/track", content=json.dumps(body))
                took.append(time.perf_counter() - started)
                if resp.status_code != 200:
                    raise RuntimeError(f"track answered {resp.status_code}: {resp.text[:200]}")
                time.sleep(0.05)
        return took

    def batches() -> None:
        every = calls(per_batch * clients * 3, 2000, f"{run}b")
        chunks = [every[i : i + per_batch] for i in range(0, len(every), per_batch)]
        try:
            api_round(api, chunks, clients)
        finally:
            stop.set()

    def show(label: str, took: list[float]) -> None:
        took = sorted(took)
        p50, p99 = took[len(took) // 2], took[min(len(took) - 1, int(len(took) * 0.99))]
        print(
            f"single track calls {label}: {len(took)} calls, p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms"
        )

    show("alone", singles("alone", 5))
    loader = threading.Thread(target=batches)
    loader.start()
    beside = singles("beside", 600)
    loader.join()
    show(f"beside {clients} clients posting batches of {per_batch}", beside)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ingest.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n")[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=20_000, help="per round (default 20000)")
    parser.add_argument("--users", type=int, default=2_000, help="distinct users (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--api-workers", type=int, default=1, help="API processes (LIFECYCLE_API_WORKERS; 1)"
    )
    parser.add_argument(
        "--small-calls",
        action="store_true",
        help="afterwards, time single track calls beside full (500 KB) batches",
    )
    parser.add_argument(
        "--signups",
        action="store_true",
        help="user_signed_up of new users against bare start_workflow + signal (goal >= 0.8)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the API with py-spy during its rounds (collapsed stacks; needs py-spy)",
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    with temporal_dev_server(workdir) as address, database(args.database, workdir) as url:
        factory = make_session_factory(make_engine(url))
        with transaction(factory) as session:
            for path in shipped_journey_files():
                publish(
                    session,
                    journey=load_journey(path),
                    source=path.read_text(encoding="utf-8"),
                    now=datetime.now(UTC),
                )
        env = process_env(url, address, workdir, f"bench-{free_port()}")
        env["LIFECYCLE_API_WORKERS"] = str(args.api_workers)
        api = chaos_parts.ApiProcess(env, workdir)
        api.start()
        what = "user_signed_up" if args.signups else "product_viewed"
        print(
            f"ingest: {args.events} {what} calls per round in batches of {BATCH}, "
            f"{args.users} users, {args.clients} clients, {args.database}, "
            f"{args.api_workers} API process(es); rounds A B B A"
        )
        profiler = None
        if args.profile and api.proc is not None:
            profiler = chaos_parts.py_spy(api.proc.pid, args.profile)
        rates: dict[str, list[float]] = {"baseline": [], "api": []}
        cpu_per_event: list[float] = []
        latencies: list[float] = []
        try:
            for number, side in enumerate(["baseline", "api", "api", "baseline"], 1):
                empty(url)
                run = f"r{number}{uuid.uuid4().hex[:4]}"
                every = calls(args.events, args.users, run, signups=args.signups)
                batches = [every[i : i + BATCH] for i in range(0, len(every), BATCH)]
                if side == "baseline" and args.signups:
                    took = signal_start_round(address, batches, args.clients)
                    extra = ""
                elif side == "baseline":
                    took = baseline_round(url, batches, args.clients)
                    extra = ""
                else:
                    took, cpu, lat = api_round(api, batches, args.clients)
                    cpu_per_event.append(cpu / args.events)
                    latencies.extend(lat)
                    extra = f"  API CPU {cpu / args.events * 1000:.3f} ms/event"
                rate = args.events / took
                rates[side].append(rate)
                print(f"round {number} {side:8} {took:7.2f}s  {rate:8.0f} events/s{extra}")
            if args.small_calls:
                small_calls_beside_full_batches(api, args.clients)
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=30)
            api.stop()
    base, ours = statistics.mean(rates["baseline"]), statistics.mean(rates["api"])
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"baseline {base:.0f} events/s, api {ours:.0f} events/s, ratio api/baseline "
        f"{ours / base:.3f} (goal >= {0.8 if args.signups else 0.5}); API CPU "
        f"{statistics.mean(cpu_per_event) * 1000:.3f} ms/event; batch of {BATCH} p50 "
        f"{p50:.2f}s p99 {p99:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
