"""New users through ``new_user_coupon`` to the welcome SMS, vs a bare workflow per user.

On a Temporal dev server on its on-disk store (as ``lifecycle dev`` runs it) and a fresh
database (a private PostgreSQL schema, dropped afterwards, or a SQLite file) with the shipped
journeys published, quiet hours and frequency caps off, one worker process, in one run:

- **journey**: ``lifecycle api`` and ``lifecycle worker`` as processes; ``--clients``
  clients post ``user_signed_up`` to ``/v1/track`` for ``--users`` users who have a phone;
  done when every user's welcome SMS is decided in the ledger (sent, or skipped for the
  holdout);
- **bare**: a bare workflow per user (``bench/bare_journey.py``) started by this script,
  ``--clients`` at a time, running the same activities (coupon, policy, provider call; the
  last left out for the same held-out users), each one small INSERT, on a worker process
  with the same activity threads and sandbox; its coupon activity starts a second bare
  workflow waiting on a timer, as the journey's coupon starts a ``coupon_expiry`` run.

Rounds alternate A B B A, each with users of its own; the side's worker runs during its
rounds only. Prints both rates per round, the ratio journey / bare (goal ≥ 0.8) and CPU
milliseconds per user of each process: the Temporal server, the worker, the API, this
script (the driver), and the rest of the machine's busy time (other: PostgreSQL's backends,
the kernel).

    .venv/bin/python bench/journeys.py                       # PostgreSQL, 300 users/round
    .venv/bin/python bench/journeys.py --database sqlite
    .venv/bin/python bench/journeys.py --profile worker.txt  # py-spy on the journey worker
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import journey_stack  # first: puts the project's packages ahead of bench/ on sys.path

ROOT = journey_stack.ROOT

import chaos_parts  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from bare_journey import (  # noqa: E402
    BARE_EXPIRY,
    BARE_WORKFLOW,
    STEPS,
    BareExpiryWorkflow,
    BareSignup,
    BareSignupWorkflow,
    BareStep,
)
from journey_stack import (  # noqa: E402
    WorkerProcess,
    add_users,
    bounded,
    cpu_seconds,
    database,
    journey_round,
    machine_busy_seconds,
    process_env,
    publish_shipped,
    rounds_parser,
    temporal_on_disk,
    until_count,
    wait_ready,
    welcome_decided,
)

from enrollment.router import holdout_group  # noqa: E402
from store.db import make_engine  # noqa: E402
from triggers.temporal_client import connect  # noqa: E402

JOURNEY = "new_user_coupon"
HOLDOUT_PERCENT = 10  # new_user_coupon.yaml's holdout
BARE_QUEUE = "bench-bare"
JOURNEY_QUEUE = "bench-journeys"
BARE_TABLE = "bench_bare_steps"


class BareWorkerProcess(WorkerProcess):
    """This script's ``--bare-worker`` as its own process."""

    def start(self) -> None:
        self.lives += 1
        self.log_path = self._workdir / f"bare-worker-{self.lives:02d}.log"
        self._log = self.log_path.open("wb")
        self.started_at = time.monotonic()
        # Its sandbox loads the workflow module from bytecode, as ``lifecycle worker`` does.
        env = {k: v for k, v in self._env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(self._workdir / "pycache")
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, str(Path(__file__).resolve()), "--bare-worker"],
            env=env,
            cwd=self._workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )


async def run_bare_worker() -> None:
    """The baseline's worker: the bare workflow and three activities of one INSERT each."""
    from temporalio import activity
    from temporalio.worker import Worker

    from config import load_settings
    from observability.health import log_when_polling
    from observability.logs import configure_logging
    from worker import sandbox_runner, workflow_tuning

    settings = load_settings()
    configure_logging("text")
    pool_size = settings.worker_activity_threads + 4
    engine = make_engine(settings.database_url, pre_ping=False, pool_size=pool_size)
    insert = sa.text(f"INSERT INTO {BARE_TABLE} (user_id, step, final) VALUES (:u, :s, :f)")

    client = await connect(settings)
    loop = asyncio.get_running_loop()

    def start_expiry(user_id: str) -> None:
        # As the journey's worker routes coupon_issued: started beside, not awaited.
        asyncio.run_coroutine_threadsafe(
            client.start_workflow(
                BARE_EXPIRY, user_id, id=f"bare-expiry:{user_id}", task_queue=BARE_QUEUE
            ),
            loop,
        )

    def one_insert(name: str) -> Callable[[BareStep], None]:
        @activity.defn(name=name)
        def step(inp: BareStep) -> None:
            with engine.begin() as conn:
                conn.execute(insert, {"u": inp.user_id, "s": inp.step, "f": inp.final})
            if name == STEPS[0]:
                start_expiry(inp.user_id)

        return step

    activities = [one_insert(name) for name in STEPS]
    with ThreadPoolExecutor(settings.worker_activity_threads) as pool:
        worker = Worker(
            client,
            task_queue=BARE_QUEUE,
            **workflow_tuning(settings),  # the journey worker's, from the same environment
            workflows=[BareSignupWorkflow, BareExpiryWorkflow],
            activities=activities,
            activity_executor=pool,
            max_concurrent_activities=settings.worker_activity_threads,
            max_concurrent_activity_task_polls=settings.worker_activity_pollers,
            workflow_runner=sandbox_runner(),
        )
        async with worker:
            await log_when_polling(client, [worker], component="worker")
            await asyncio.Event().wait()


async def bare_round(client: object, users: list[str], clients: int) -> None:
    from temporalio.client import Client

    assert isinstance(client, Client)

    async def start(user: str) -> None:
        held = holdout_group(JOURNEY, user, HOLDOUT_PERCENT) == "holdout"
        await client.start_workflow(
            BARE_WORKFLOW, BareSignup(user, held), id=f"bare:{user}", task_queue=BARE_QUEUE
        )

    await bounded(clients, [lambda u=u: start(u) for u in users])  # type: ignore[misc]


async def bench(args: argparse.Namespace, workdir: Path) -> int:
    with (
        temporal_on_disk(workdir) as (address, server_pid),
        database(args.database, workdir) as url,
    ):
        publish_shipped(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            columns = "user_id VARCHAR(64), step VARCHAR(32), final BOOLEAN"
            conn.execute(sa.text(f"CREATE TABLE {BARE_TABLE} ({columns})"))
        env = process_env(url, address, workdir, JOURNEY_QUEUE)
        api = chaos_parts.ApiProcess(env, workdir)
        api.start()
        from config import Settings

        client = await connect(Settings(database_url=url, temporal_address=address))
        workers = {
            "journey": WorkerProcess(env, workdir),
            "bare": BareWorkerProcess(env, workdir),
        }
        print(
            f"journeys: {args.users} new users per round through {JOURNEY} to the welcome SMS "
            f"decided, against a bare workflow with the same activities; {args.database}, "
            f"dev server on disk, one worker, {args.clients} clients; rounds A B B A"
        )
        rates: dict[str, list[float]] = {"bare": [], "journey": []}
        cpu: dict[str, dict[str, list[float]]] = {"bare": {}, "journey": {}}
        try:
            for number, side in enumerate(["bare", "journey", "journey", "bare"], 1):
                prefix = f"r{number}{uuid.uuid4().hex[:4]}-"
                users = [f"{prefix}{i:06d}" for i in range(args.users)]
                worker = workers[side]
                worker.start()
                wait_ready(worker)
                profiler = None
                if side == "journey":
                    add_users(url, users)
                    if args.profile:
                        profiler = chaos_parts.py_spy(worker.pid, f"{args.profile}.{number}")
                    query = welcome_decided(prefix)
                else:
                    query = sa.text(
                        f"SELECT count(*) FROM {BARE_TABLE} WHERE final AND user_id LIKE :p"
                    ).bindparams(p=f"{prefix}%")
                pids = {"server": server_pid, "worker": worker.pid}
                if side == "journey":
                    pids["api"] = api.proc.pid if api.proc else 0
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                machine0 = machine_busy_seconds()
                driver0 = time.process_time()
                started = time.perf_counter()
                if side == "journey":
                    await journey_round(api.url, users, args.clients)
                else:
                    await bare_round(client, users, args.clients)
                await until_count(engine, query, args.users, args.timeout)
                took = time.perf_counter() - started
                used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
                used["driver"] = time.process_time() - driver0
                # The rest of the machine's busy time: PostgreSQL's backends, the kernel.
                used["other"] = machine_busy_seconds() - machine0 - sum(used.values())
                if profiler is not None:
                    profiler.send_signal(2)
                    profiler.wait(timeout=30)
                worker.stop()
                rate = args.users / took
                rates[side].append(rate)
                for name, seconds in used.items():
                    cpu[side].setdefault(name, []).append(seconds / args.users * 1000)
                per = ", ".join(f"{n} {s / args.users * 1000:.1f}" for n, s in used.items())
                print(
                    f"round {number} {side:8} {took:7.2f}s  {rate:6.1f} users/s  "
                    f"CPU ms/user: {per}",
                    flush=True,
                )
        finally:
            for w in workers.values():
                w.stop()
            api.stop()
    bare, ours = statistics.mean(rates["bare"]), statistics.mean(rates["journey"])
    print(
        f"bare {bare:.1f} users/s, journey {ours:.1f} users/s, ratio journey/bare "
        f"{ours / bare:.2f} (goal >= 0.8)"
    )
    for side in ("bare", "journey"):
        parts = {name: statistics.mean(v) for name, v in cpu[side].items()}
        total = sum(parts.values())
        detail = ", ".join(f"{name} {ms:.1f}" for name, ms in parts.items())
        print(f"CPU per user, {side}: {total:.1f} ms ({detail})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = rounds_parser("journeys.py", __doc__)
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy the journey worker into FILE.<round>"
    )
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:
        asyncio.run(run_bare_worker())
        return 0
    logging.basicConfig(level=logging.WARNING)
    # The processes' logs and the dev server's file, removed at the end.
    with tempfile.TemporaryDirectory(prefix="bench-journeys-") as workdir:
        return asyncio.run(bench(args, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
