"""Worker tuning: new users through ``new_user_coupon`` under several ``LIFECYCLE_WORKER_*``
settings, side by side in one run.

The same stack as ``bench/journeys.py`` (a Temporal dev server on its on-disk store, a fresh
database with the shipped journeys, quiet hours and caps off, ``lifecycle api`` and one
``lifecycle worker`` process): ``--clients`` clients post ``user_signed_up`` for ``--users``
users a round, and a round ends when every welcome SMS is decided. Each setting gets its own
worker process; rounds go forwards through the settings and back (A B C C B A), so a drift
of the machine during the run falls on every setting alike. Prints users per second per
round, then per setting its mean rate, its rate against the defaults measured in the same
run, and CPU milliseconds per user of the worker and the Temporal server.

    .venv/bin/python bench/worker_tuning.py                      # PostgreSQL, the presets
    .venv/bin/python bench/worker_tuning.py --database sqlite
    .venv/bin/python bench/worker_tuning.py --setting "threads8=WORKER_ACTIVITY_THREADS=8"
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import journey_stack  # noqa: F401 - first: puts the project's packages ahead of bench/

# isort: split
import chaos_parts  # noqa: E402
from journey_stack import (  # noqa: E402
    WorkerProcess,
    add_users,
    cpu_seconds,
    database,
    journey_round,
    process_env,
    publish_shipped,
    rounds_parser,
    temporal_on_disk,
    until_count,
    wait_ready,
    welcome_decided,
)

from store.db import make_engine  # noqa: E402

QUEUE = "bench-tuning"
# name -> LIFECYCLE_<variable> values; "defaults" sets nothing and is the baseline.
PRESETS: dict[str, dict[str, str]] = {
    "defaults": {},
    "threads32": {"WORKER_ACTIVITY_THREADS": "32"},
    "threads8": {"WORKER_ACTIVITY_THREADS": "8"},
    "pollers10": {"WORKER_WORKFLOW_POLLERS": "10", "WORKER_ACTIVITY_POLLERS": "10"},
    "pollers2": {"WORKER_WORKFLOW_POLLERS": "2", "WORKER_ACTIVITY_POLLERS": "2"},
    "no_cache": {"WORKER_CACHED_WORKFLOWS": "0"},
}


def parse_setting(text: str) -> tuple[str, dict[str, str]]:
    """``name=VAR=value[,VAR=value]`` (the variables without ``LIFECYCLE_``)."""
    name, _, rest = text.partition("=")
    values = dict(item.split("=", 1) for item in rest.split(",") if "=" in item)
    if not name or not values:
        raise argparse.ArgumentTypeError(f"write a setting as name=VAR=value, not {text!r}")
    return name, values


async def bench(
    args: argparse.Namespace, settings: dict[str, dict[str, str]], workdir: Path
) -> int:
    with (
        temporal_on_disk(workdir) as (address, server_pid),
        database(args.database, workdir) as url,
    ):
        publish_shipped(url)
        engine = make_engine(url)
        env = process_env(url, address, workdir, QUEUE)
        api = chaos_parts.ApiProcess(env, workdir)
        api.start()
        workers = {
            name: WorkerProcess(env | {f"LIFECYCLE_{k}": v for k, v in values.items()}, workdir)
            for name, values in settings.items()
        }
        order = list(settings) + list(reversed(settings))
        print(
            f"worker tuning: {args.users} new users per round through new_user_coupon to the "
            f"welcome SMS decided; {args.database}, dev server on disk, one worker process, "
            f"{args.clients} clients; rounds {' '.join(order)}"
        )
        rates: dict[str, list[float]] = {name: [] for name in settings}
        cpu: dict[str, dict[str, list[float]]] = {name: {} for name in settings}
        try:
            for number, name in enumerate(order, 1):
                prefix = f"t{number}{uuid.uuid4().hex[:4]}-"
                users = [f"{prefix}{i:06d}" for i in range(args.users)]
                worker = workers[name]
                worker.start()
                wait_ready(worker)
                add_users(url, users)
                pids = {"worker": worker.pid, "server": server_pid}
                before = {part: cpu_seconds(pid) for part, pid in pids.items()}
                started = time.perf_counter()
                await journey_round(api.url, users, args.clients)
                await until_count(engine, welcome_decided(prefix), args.users, args.timeout)
                took = time.perf_counter() - started
                for part, pid in pids.items():  # before the worker exits
                    used = (cpu_seconds(pid) - before[part]) / args.users * 1000
                    cpu[name].setdefault(part, []).append(used)
                worker.stop()
                rates[name].append(args.users / took)
                print(
                    f"round {number:2} {name:12} {took:7.2f}s {args.users / took:7.1f} users/s",
                    flush=True,
                )
        finally:
            for w in workers.values():
                w.stop()
            api.stop()
    baseline = statistics.mean(rates["defaults"])
    for name in settings:
        rate = statistics.mean(rates[name])
        used = ", ".join(f"{p} {statistics.mean(v):.1f}" for p, v in cpu[name].items())
        print(
            f"{name:12} {rate:7.1f} users/s  ratio to defaults {rate / baseline:.2f}  "
            f"CPU ms/user: {used}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = rounds_parser("worker_tuning.py", __doc__)
    parser.add_argument(
        "--setting",
        type=parse_setting,
        action="append",
        metavar="NAME=VAR=VALUE[,VAR=VALUE]",
        help="measure these settings (besides the defaults) instead of the presets: "
        + "; ".join(f"{n}: {v}" for n, v in PRESETS.items() if v),
    )
    args = parser.parse_args(argv)
    settings = {"defaults": {}, **dict(args.setting)} if args.setting else PRESETS
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as workdir:
        return asyncio.run(bench(args, settings, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
