"""The Temporal worker: the only place real dependencies are built from settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.coupons import CouponActivities
from activities.delivery import DeliveryActivities
from activities.enrollments import EnrollmentActivities
from channels.base import Channel
from channels.outbox import OutboxChannel
from config import Settings
from message_templates.render import TemplateRenderer
from store.db import SessionFactory, make_engine, make_session_factory
from store.outbox import SqlOutboxSink
from triggers.temporal_client import connect
from workflows.journey import JourneyWorkflow

log = logging.getLogger(__name__)

WORKFLOWS = [JourneyWorkflow]

# Imported once, outside the sandbox: re-importing pydantic models per run halves throughput.
PASSTHROUGH = ("journeys", "workflows.contracts", "pydantic", "pydantic_core", "annotated_types")


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox, with the journey models passed through."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_channels(settings: Settings, factory: SessionFactory) -> dict[str, Channel]:
    """One sender per channel kind, as settings say."""
    outbox = OutboxChannel(SqlOutboxSink(factory))
    channels: dict[str, Channel] = {}
    for kind in ("sms", "email", "push"):
        provider = settings.provider_for(kind)  # type: ignore[arg-type]
        if provider != "outbox":
            raise ValueError(f"unknown {kind} provider {provider!r}")
        channels[kind] = outbox
    return channels


def build_activities(
    settings: Settings,
    factory: SessionFactory,
    *,
    channels: Mapping[str, Channel] | None = None,
) -> list[Callable[..., Any]]:
    """Every activity callable, bound to its dependencies."""
    renderer = TemplateRenderer(
        default_locale=settings.default_locale,
        default_timezone=settings.default_timezone,
        sms_opt_out_text=settings.sms_opt_out_text,
    )
    delivery = DeliveryActivities(
        factory,
        renderer=renderer,
        channels=channels if channels is not None else build_channels(settings, factory),
        default_locale=settings.default_locale,
        default_timezone=settings.default_timezone,
        unsubscribe_base_url=f"http://{settings.api_host}:{settings.api_port}/u",
    )
    return [
        delivery.deliver,
        CouponActivities(factory).issue_coupon,
        EnrollmentActivities(factory).finish_enrollment,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    factory: SessionFactory,
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor,
    channels: Mapping[str, Channel] | None = None,
    activities: list[Callable[..., Any]] | None = None,
) -> Worker:
    """A worker running every workflow and activity on ``task_queue``."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities
        if activities is not None
        else build_activities(settings, factory, channels=channels),
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        workflow_runner=sandbox_runner(),
    )


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, factory: SessionFactory, **kwargs: Any
) -> AsyncIterator[Worker]:
    """``async with running_worker(...)``: a polling worker with its own thread pool."""
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
        async with build_worker(client, settings, factory, executor=executor, **kwargs) as worker:
            yield worker


async def run_worker(settings: Settings) -> None:
    """Connect, build everything from settings, and run until cancelled."""
    factory = make_session_factory(make_engine(settings.database_url))
    client = await connect(settings)
    log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
        worker = build_worker(client, settings, factory, executor=executor)
        await worker.run()


if __name__ == "__main__":
    from config import load_settings

    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_worker(load_settings()))
