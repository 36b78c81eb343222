"""``GET /healthz`` (alive), ``GET /readyz`` (the database and Temporal answer, with the
dead-letter counts) and ``GET /metrics`` (Prometheus): no key, for probes and scrapers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from observability.health import Check, database_check
from observability.http import ops_router
from observability.metrics import PrometheusMetrics
from store.db import SessionFactory
from store.rejected import pending_counts

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def ops_routes(
    *,
    session_factory: SessionFactory,
    metrics: PrometheusMetrics,
    readiness: Mapping[str, Check],
) -> APIRouter:
    """``/metrics`` recording into ``metrics`` while the app is served, and ``/readyz``
    checking the database and ``readiness``, with the dead letters waiting for replay."""

    def dead_letters() -> dict[str, Any]:
        with session_factory() as session:
            return {"dead_letters": pending_counts(session)}

    async def details() -> dict[str, Any]:
        return await run_in_threadpool(dead_letters)

    return ops_router(
        metrics=metrics,
        checks={"database": database_check(session_factory), **readiness},
        details=details,
    )
