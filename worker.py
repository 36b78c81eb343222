"""The Temporal worker: its activities and workers, bound to what :mod:`compose` builds."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import compose
import kinds
from activities.audiences import AudienceActivities
from activities.broadcast import BroadcastActivities
from activities.coupons import CouponActivities
from activities.delivery import DeliveryActivities, DeliveryDeps
from activities.enrollments import EnrollmentActivities
from activities.policy import DeliveryRules
from activities.profiles import ProfileActivities
from activities.sweeps import SweepActivities
from channels.base import Channel, HoldsEarlyStatuses
from channels.providers import early_status_holders
from config import Settings
from enrollment.router import JourneyRouter
from message_templates.render import TemplateRenderer
from message_templates.unsubscribe_links import UnsubscribeLinks
from observability.health import log_when_polling
from observability.metrics import start_metrics_endpoint
from store.db import SessionFactory, transaction
from store.webhooks import HELD_STATUS_LIFETIME, purge_unclaimed_statuses
from workflows.broadcast import BroadcastWorkflow
from workflows.contracts import broadcast_batch_size, bulk_task_queue, channel_task_queue
from workflows.journey import JourneyWorkflow
from workflows.sandbox import sandbox_runner as sandbox_with
from workflows.sweep import SweepWorkflow

log = logging.getLogger(__name__)

WORKFLOWS = [JourneyWorkflow, BroadcastWorkflow, SweepWorkflow]

# Imported once, outside the sandbox: re-importing pydantic models per run halves throughput.
# ``kinds`` too: a kind registered in the worker's process (a test's own) is seen inside.
PASSTHROUGH = (
    "journeys",
    "kinds",
    "workflows.contracts",
    "workflows.journey_contracts",
    "workflows.sweep_contracts",
    "workflows.broadcast_contracts",
    "workflows.ids",
    "workflows.journey_context",
    "workflows.history",
    "pydantic",
    "pydantic_core",
    "annotated_types",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox, with the journey models passed through (and its glue compiled
    once: :mod:`workflows.sandbox`)."""
    return sandbox_with(PASSTHROUGH)


def batches_per_second(rate: float) -> float:
    """A bulk queue's limit in batches per second, for ``rate`` sends per second."""
    return rate / broadcast_batch_size(rate)


def build_delivery(
    settings: Settings,
    factory: SessionFactory,
    *,
    channels: Mapping[str, Channel] | None = None,
    renderer: TemplateRenderer | None = None,
) -> DeliveryActivities:
    """The delivery activities (policy and provider calls), bound to their dependencies:
    ``channels`` and ``renderer`` as given, else as settings say (the shipped templates)."""
    renderer = renderer or compose.renderer(settings)
    return DeliveryActivities(
        DeliveryDeps(
            factory=factory,
            renderer=renderer,
            channels=channels if channels is not None else compose.channels(settings, factory),
            unsubscribe_links=UnsubscribeLinks.from_settings(settings),
            rules=DeliveryRules.from_settings(settings),
            default_locale=settings.default_locale,
            bulk_rates={kind: settings.broadcast_rate_for(kind) for kind in kinds.names()},
        )
    )


def build_workers(
    client: Client,
    settings: Settings,
    factory: SessionFactory,
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor,
    channels: Mapping[str, Channel] | None = None,
    renderer: TemplateRenderer | None = None,
) -> list[Worker]:
    """The journey worker (workflows and every activity but provider calls) on
    ``task_queue``; per channel, one worker on ``<task_queue>.<channel>`` for the journeys'
    provider calls and one on ``<task_queue>.<channel>.bulk`` for broadcasts' batches, each
    rate-limited for the whole cluster."""
    queue = task_queue or settings.task_queue
    delivery = build_delivery(settings, factory, channels=channels, renderer=renderer)
    router = JourneyRouter.from_settings(settings, factory=factory, client=client, task_queue=queue)
    sweeps = SweepActivities(factory, router)
    broadcasts = BroadcastActivities(factory, delivery)
    grace = timedelta(seconds=settings.worker_shutdown_grace)
    journeys = Worker(
        client,
        task_queue=queue,
        **workflow_tuning(settings),
        workflows=WORKFLOWS,
        activities=[
            delivery.prepare_send,
            CouponActivities(factory, announce=route_soon(router)).issue_coupon,
            EnrollmentActivities(factory).finish_enrollment,
            AudienceActivities(factory).in_audience,
            ProfileActivities(factory, default_timezone=settings.default_timezone).next_local_time,
            sweeps.sweep_page,
            broadcasts.broadcast_page,
            broadcasts.broadcast_deferred,
            broadcasts.record_broadcast,
        ],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        max_concurrent_activity_task_polls=settings.worker_activity_pollers,
        workflow_runner=sandbox_runner(),
        graceful_shutdown_timeout=grace,
    )

    def channel_worker(task_queue: str, send: Any, per_second: float) -> Worker:
        return Worker(
            client,
            task_queue=task_queue,
            activities=[send],
            activity_executor=executor,
            max_concurrent_activities=executor._max_workers,
            max_concurrent_activity_task_polls=settings.worker_activity_pollers,
            max_task_queue_activities_per_second=per_second,
            graceful_shutdown_timeout=grace,
        )

    described = kinds.all_kinds()
    senders = [
        channel_worker(
            channel_task_queue(queue, kind.queue_suffix),
            delivery.send_message,
            settings.rate_for(kind.name),
        )
        for kind in described
    ]
    # Broadcast sends come in batches: the limit in sends per second, divided by the batch.
    bulk = [
        channel_worker(
            bulk_task_queue(queue, kind.queue_suffix),
            delivery.send_batch,
            batches_per_second(settings.broadcast_rate_for(kind.name)),
        )
        for kind in described
    ]
    return [journeys, *senders, *bulk]


def route_soon(router: JourneyRouter) -> Callable[[int], None]:
    """Hand an event an activity just stored (``coupon_issued``) to ``router`` on this
    worker's event loop, without waiting for it: the journeys it starts begin within a
    moment, not at the pending-event loop's next pass. Best effort: an event this leaves
    unrouted is routed by that loop (``route_pending_forever``)."""
    loop = asyncio.get_running_loop()
    running: set[Future[None]] = set()

    def done(future: Future[None]) -> None:
        running.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning(
                "routing a stored event failed; the pending loop retries: %r", future.exception()
            )

    def route(event_id: int) -> None:
        future = asyncio.run_coroutine_threadsafe(router.route([event_id]), loop)
        running.add(future)
        future.add_done_callback(done)

    return route


class WorkflowTuning(TypedDict):
    """A workflow worker's limits (keyword arguments of temporalio's ``Worker``)."""

    max_concurrent_workflow_tasks: int
    max_cached_workflows: int
    max_concurrent_workflow_task_polls: int


def workflow_tuning(settings: Settings) -> WorkflowTuning:
    """The journey worker's workflow-task limits, from ``LIFECYCLE_WORKER_*``."""
    return WorkflowTuning(
        max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
        max_cached_workflows=settings.worker_cached_workflows,
        max_concurrent_workflow_task_polls=settings.worker_workflow_pollers,
    )


def activity_pool(settings: Settings) -> ThreadPoolExecutor:
    """The threads every activity of a worker process runs on."""
    threads = settings.worker_activity_threads
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="activity")


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, factory: SessionFactory, **kwargs: Any
) -> AsyncIterator[list[Worker]]:
    """``async with running_worker(...)``: polling workers with their own thread pool."""
    with activity_pool(settings) as executor:
        async with AsyncExitStack() as stack:
            workers = build_workers(client, settings, factory, executor=executor, **kwargs)
            for worker in workers:
                await stack.enter_async_context(worker)
            yield workers


async def run_worker(settings: Settings) -> None:
    """Connect, build everything from settings, and run until SIGTERM or SIGINT, then drain
    (``worker_shutdown_grace``)."""
    stop = stop_on_signals()  # first: a signal while connecting stops the worker cleanly too
    keep_bytecode(Path(settings.data_dir) / "pycache")
    # A pooled connection per activity thread (and a few for routing), kept open.
    pool_size = settings.worker_activity_threads + 4
    engine = compose.engine(settings, pre_ping=False, pool_size=pool_size)
    factory = compose.session_factory(settings, on=engine)
    runtime = start_metrics_endpoint(settings.worker_metrics_address)  # None: no endpoint
    client = await compose.temporal_client(settings, runtime=runtime)
    if stop.is_set():
        log.info("worker stopped before it started")
        return
    log.info("worker starting: task queue %s on %s", settings.task_queue, settings.temporal_address)
    if settings.worker_cached_workflows == 0:
        log.warning(
            "LIFECYCLE_WORKER_CACHED_WORKFLOWS=0: every workflow task replays its run's history "
            "and re-runs its local activities; journeys go about ten times slower"
        )
    router = JourneyRouter.from_settings(settings, factory=factory, client=client)
    channels = compose.channels(settings, factory)
    # Held reports are purged for the senders that hold them, whichever provider that is.
    holders = {c.name for c in channels.values() if isinstance(c, HoldsEarlyStatuses)}
    with activity_pool(settings) as executor:
        workers = build_workers(client, settings, factory, executor=executor, channels=channels)
        sweeper = asyncio.create_task(route_pending_forever(router))
        purger = asyncio.create_task(purge_held_statuses_forever(factory, providers=holders))
        ready = asyncio.create_task(log_when_polling(client, workers, component="worker"))
        stopping = asyncio.create_task(stop.wait())
        running = asyncio.gather(*(worker.run() for worker in workers))
        try:
            first: list[asyncio.Future[Any]] = [running, stopping]
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                log.info(
                    "worker stopping: no new tasks; running activities get up to %gs to finish",
                    settings.worker_shutdown_grace,
                )
            # On a signal, or when one worker failed: every worker drains before the exit.
            await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
            await running
            log.info("worker stopped")
        finally:
            for task in (stopping, sweeper, purger, ready):
                task.cancel()


def keep_bytecode(folder: Path) -> None:
    """Let the sandbox load the workflow modules it imports afresh for every run from
    bytecode, even where ``PYTHONDONTWRITEBYTECODE`` is set (as in many container images):
    without it each new run compiled ``workflows/journey.py`` from source again, a fifth of
    the worker's CPU in ``bench/journeys.py``. The bytecode goes to ``folder``, not next to
    the sources; if it cannot be written there, modules are compiled as before."""
    if sys.dont_write_bytecode:
        sys.pycache_prefix = sys.pycache_prefix or str(folder)
        sys.dont_write_bytecode = False


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM (a deploy, ``docker stop``) or SIGINT (Ctrl-C): the worker
    then drains instead of dying with provider calls half-made. A second signal during the
    drain kills the process at once, as that signal does by default."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def first_signal() -> None:
        stop.set()
        for sig in signals:
            loop.remove_signal_handler(sig)
            # A plain handler, not the loop's: it runs even while the loop waits on threads.
            signal.signal(sig, _die_by_signal)

    for sig in signals:
        loop.add_signal_handler(sig, first_signal)
    return stop


def _die_by_signal(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


async def repeat_forever(job: Callable[[], Awaitable[object]], every: float, what: str) -> None:
    """Run ``job`` every ``every`` seconds for the life of the process; an error is logged and
    waits for the next round."""
    while True:
        try:
            await job()
        except Exception:
            log.exception("%s failed; retrying in %.0fs", what, every)
        await asyncio.sleep(every)


async def route_pending_forever(router: JourneyRouter, every: float = 10.0) -> None:
    """Route events nobody routed: engine-emitted ones (``coupon_issued``) and any whose
    API call failed to route and was never retried."""
    await repeat_forever(router.route_pending, every, "routing pending events")


async def purge_held_statuses_forever(
    factory: SessionFactory,
    every: float = 3600.0,
    clock: Callable[[], datetime] = compose.clock,
    *,
    providers: Collection[str] | None = None,
) -> None:
    """Hourly: drop the status reports held a week for a message the ledger never learnt
    (``store.webhooks.purge_unclaimed_statuses``), of each of ``providers`` (by default,
    every provider whose sender holds early statuses)."""
    holders = tuple(early_status_holders() if providers is None else providers)

    async def purge() -> None:
        purged = await asyncio.to_thread(_purge_held_statuses, factory, holders, clock())
        if purged:
            log.info("purged %d status reports held a week with no message", purged)

    await repeat_forever(purge, every, "purging held status reports")


def _purge_held_statuses(factory: SessionFactory, providers: Sequence[str], now: datetime) -> int:
    with transaction(factory) as session:
        return sum(
            purge_unclaimed_statuses(session, provider=name, before=now - HELD_STATUS_LIFETIME)
            for name in providers
        )


if __name__ == "__main__":
    from config import load_settings
    from observability.logs import configure_logging

    worker_settings = load_settings()
    configure_logging(worker_settings.log_format)
    asyncio.run(run_worker(worker_settings))
