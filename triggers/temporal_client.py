"""The Temporal client every process uses (pydantic data converter: specs hold timedeltas)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from config import Settings


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """Connect to ``settings.temporal_address`` / ``settings.temporal_namespace``, on
    ``runtime`` when given (e.g. one serving Prometheus metrics), else the default one."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
