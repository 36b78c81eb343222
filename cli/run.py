"""The processes of a deployment: ``lifecycle dev``, ``api``, ``worker`` and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import time

from cli.common import Commands, command
from config import Settings

WORKER_HELP = (
    "run a Temporal worker (run as many as you like): journeys, sweeps and broadcasts on\n"
    "LIFECYCLE_TASK_QUEUE (default lifecycle); the journeys' provider calls on\n"
    "<queue>.sms, .email, .push, limited to LIFECYCLE_SMS_RATE_PER_SECOND etc.; broadcast\n"
    "batches on <queue>.sms.bulk etc., limited to LIFECYCLE_SMS_BROADCAST_RATE_PER_SECOND\n"
    "etc. The limits hold across all workers. 16 activity threads, one database\n"
    "connection each; LIFECYCLE_WORKER_METRICS_ADDRESS serves Prometheus metrics.\n"
    "SIGTERM or Ctrl-C drains: no new tasks, running activities get up to\n"
    "LIFECYCLE_WORKER_SHUTDOWN_GRACE seconds (default 15) to finish; a second signal\n"
    "kills it at once."
)


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from devstack.stack import run_dev

    return run_dev(settings)


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.server import build_app, freeze_startup_heap

    # log_config=None: uvicorn's loggers use the handler (and format) set up in main().
    if settings.api_workers > 1:
        # Each process builds its own app (and logging) from the environment.
        uvicorn.run(
            "api.server:app_from_env",
            factory=True,
            host=settings.api_host,
            port=settings.api_port,
            workers=settings.api_workers,
            log_config=None,
        )
        return 0
    app = build_app(settings)
    freeze_startup_heap()
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker import run_worker

    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    import compose
    from store.migrate import upgrade

    began = time.monotonic()

    def applied(revision: str, description: str) -> None:
        # One line per migration as it lands: on a large table one may take minutes.
        print(f"  {revision} {description}  ({time.monotonic() - began:.1f} s)", flush=True)

    upgrade(compose.engine(settings), on_step=applied)
    print(f"database at {settings.database_url} is up to date")
    return 0


def register(sub: Commands) -> None:
    command(
        sub,
        "dev",
        cmd_dev,
        "run the local stack: Temporal dev server, API, worker, sweep scheduler",
        "lifecycle dev",
    )
    command(
        sub,
        "api",
        cmd_api,
        "run the ingestion API (uvicorn) on LIFECYCLE_API_HOST:LIFECYCLE_API_PORT; "
        "LIFECYCLE_API_WORKERS processes (one per core serves the most events), each keeping "
        "LIFECYCLE_API_DB_CONNECTIONS (16) database connections",
        "LIFECYCLE_API_PORT=8080 LIFECYCLE_API_WORKERS=2 lifecycle api",
    )
    worker = command(
        sub,
        "worker",
        cmd_worker,
        "run a Temporal worker",
        "TEMPORAL_ADDRESS=temporal:7233 lifecycle worker",
    )
    worker.description = WORKER_HELP
    command(
        sub,
        "migrate",
        cmd_migrate,
        "create or upgrade the database schema",
        "DATABASE_URL=postgresql://u@db/lifecycle lifecycle migrate",
    )
