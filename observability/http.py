"""The API's operations endpoints: ``GET /metrics`` and ``GET /readyz``.

``/readyz`` answers 200 ``{"status": "ready", "checks": {...}}`` when every dependency
answers, else 503 with ``down`` naming the ones that did not. Details that are not failures
(how many calls wait in the dead-letter table) come under ``details``. ``/healthz`` (process alive)
needs nothing and lives with the API itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse

from observability.health import Check, run_checks
from observability.metrics import PrometheusMetrics, installed

Details = Callable[[], Awaitable[dict[str, Any]]]


def ops_router(
    *, metrics: PrometheusMetrics, checks: Mapping[str, Check], details: Details | None = None
) -> APIRouter:
    """``/metrics`` from ``metrics`` (the process records into it while the app is served)
    and ``/readyz`` from ``checks`` (name → check), with ``details()`` added when given
    (a failing ``details`` is reported there, never a reason to be unready)."""

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
        extra: dict[str, Any] = {}
        if details is not None and results.get("database", "ok") == "ok":
            try:
                extra = {"details": await details()}
            except Exception as exc:  # a detail is information, never a reason to be unready
                extra = {"details": {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}}
        down = [name for name, result in results.items() if result != "ok"]
        if not down:
            return JSONResponse({"status": "ready", "checks": results, **extra})
        body = {
            "status": "unavailable",
            "error": f"not ready: {', '.join(down)} unreachable",
            "down": down,
            "checks": results,
            **extra,
        }
        return JSONResponse(body, status_code=503)

    return router
