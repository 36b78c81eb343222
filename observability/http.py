"""The API's operations endpoints: ``GET /metrics`` and ``GET /readyz``.

``/readyz`` answers 200 ``{"status": "ready", "checks": {...}}`` when every dependency
answers, else 503 with ``down`` naming the ones that did not. ``/healthz`` (process alive)
needs nothing and lives with the API itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse

from observability.health import Check, run_checks
from observability.metrics import PrometheusMetrics, installed


def ops_router(*, metrics: PrometheusMetrics, checks: Mapping[str, Check]) -> APIRouter:
    """``/metrics`` from ``metrics`` (the process records into it while the app is served)
    and ``/readyz`` from ``checks`` (name → check)."""

    @asynccontextmanager
    async def recording(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        with installed(metrics):
            yield {}

    router = APIRouter(lifespan=recording)

    @router.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        results = await run_checks(checks)
        down = [name for name, result in results.items() if result != "ok"]
        if not down:
            return JSONResponse({"status": "ready", "checks": results})
        body = {
            "status": "unavailable",
            "error": f"not ready: {', '.join(down)} unreachable",
            "down": down,
            "checks": results,
        }
        return JSONResponse(body, status_code=503)

    return router
