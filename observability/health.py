"""Readiness: is the database answering, is Temporal answering, are the workers polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import Worker

from observability.logs import log_ready
from store.db import SessionFactory

# A check returns normally when its dependency answers and raises when it does not.
Check = Callable[[], Awaitable[None]]
CHECK_TIMEOUT = 3.0


def database_check(factory: SessionFactory) -> Check:
    """``SELECT 1`` through a session of ``factory`` (off the event loop)."""

    def select_one() -> None:
        with factory() as session:
            session.execute(text("SELECT 1"))

    async def check() -> None:
        await run_in_threadpool(select_one)

    return check


def temporal_check(client: Callable[[], Awaitable[Client]]) -> Check:
    """The Temporal frontend's gRPC health check, on the client ``client()`` gives (which
    may connect first)."""

    async def check() -> None:
        connected = await client()
        if not await connected.service_client.check_health(
            timeout=timedelta(seconds=CHECK_TIMEOUT)
        ):
            raise RuntimeError("the frontend reports it is not serving")

    return check


def _problem(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:g}s"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


async def run_checks(checks: Mapping[str, Check]) -> dict[str, str]:
    """Run every check at once, each for at most :data:`CHECK_TIMEOUT` seconds.

    Returns:
        Each check's name with ``"ok"`` or what went wrong.
    """

    async def one(check: Check) -> str:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except Exception as exc:  # whatever the dependency does wrong is the answer
            return _problem(exc)
        return "ok"

    results = await asyncio.gather(*(one(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def _queue_type(worker: Worker) -> TaskQueueType.ValueType:
    if worker.config().get("workflows"):
        return TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
    return TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


async def _polled_by(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=kind,
        )
    )
    return {poller.identity for poller in response.pollers}


async def log_when_polling(
    client: Client, workers: Sequence[Worker], *, component: str = "worker", every: float = 0.2
) -> None:
    """Log ``<component> ready`` once Temporal lists this process as a poller of every
    worker's task queue. Run it as a task beside the workers; cancel it with them."""
    identity = client.identity
    pending = sorted({(worker.task_queue, _queue_type(worker)) for worker in workers})
    while pending:
        polled = await asyncio.gather(*(_polled_by(client, q, kind) for q, kind in pending))
        pending = [key for key, ids in zip(pending, polled, strict=True) if identity not in ids]
        if pending:
            await asyncio.sleep(every)
    queues = sorted({worker.task_queue for worker in workers})
    log_ready(
        component,
        f"polling {', '.join(queues)} in namespace {client.namespace}",
        task_queues=queues,
        namespace=client.namespace,
    )
