"""The ingestion API: Segment's HTTP tracking API, served by FastAPI.

``POST /v1/identify``, ``/v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/group``,
``/v1/alias`` and ``/v1/batch`` take what Segment's client libraries send (HTTP Basic with the
write key as user name, JSON, optionally gzipped) and answer ``{"success": true}``. A batch is
judged item by item, as Segment does: the good calls are stored, the refused ones go to the
dead-letter table and are listed in the answer (``"refused": [{"index", "messageId", "field",
"reason"}]``), still with 200; only a body that is unreadable or too large is refused whole.
A refused single call is kept in the dead-letter table too and answered 400. Errors are
``{"error": "<sentence>", "field": "<path>"}``. ``GET /healthz`` (alive), ``GET /readyz``
(database and Temporal answer) and ``GET /metrics`` (Prometheus) need no key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from config import Settings
from observability.health import Check, database_check
from observability.http import ops_router
from observability.metrics import PrometheusMetrics
from store.db import SessionFactory
from store.rejected import pending_counts
from triggers.admin import admin_router
from triggers.body import read_body
from triggers.ingest import ActedOn, Clock, EventRouter, Ingestor, RoutingFailed, utc_now
from triggers.openapi import BATCH_SCHEMA, INGEST_RESPONSES, call_schema, request_body
from triggers.segment import (
    MESSAGE_TYPES,
    Limits,
    MessageType,
    Parsed,
    PayloadError,
    parse_batch_body,
    parse_single_body,
)
from triggers.unsubscribe import unsubscribe_router
from triggers.webhooks import webhook_router

log = logging.getLogger(__name__)

_SUCCESS = {"success": True}
# Bodies larger than this are parsed off the event loop (a full batch takes milliseconds).
_PARSE_INLINE_BYTES = 64 * 1024


def _unauthorized(reason: str) -> JSONResponse:
    return JSONResponse(
        {"error": reason}, status_code=401, headers={"WWW-Authenticate": 'Basic realm="lifecycle"'}
    )


def _error(exc: PayloadError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def limits_of(settings: Settings) -> Limits:
    """The per-call limits the API enforces, from settings."""
    return Limits(
        max_message_bytes=settings.max_message_bytes,
        max_depth=settings.max_json_depth,
        max_future_skew=settings.max_future_skew,
        earliest=settings.earliest_event_time,
    )


def check_write_key(authorization: str | None, write_key: str) -> str | None:
    """Why ``authorization`` does not carry ``write_key`` as its Basic user name, or None.

    Segment's libraries send ``Basic base64("<write key>:")``; the password is not checked.
    """
    if not authorization:
        return "Missing HTTP Basic credentials: send the write key as the user name."
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return "Authorization must be HTTP Basic with the write key as the user name."
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "Authorization is not valid base64."
    user, _, _password = decoded.partition(b":")
    if not hmac.compare_digest(user, write_key.encode()):
        return "Invalid write key."
    return None


def create_app(
    settings: Settings,
    *,
    session_factory: SessionFactory,
    router: EventRouter,
    clock: Clock | None = None,
    metrics: PrometheusMetrics | None = None,
    readiness: Mapping[str, Check] | None = None,
    acted_on: ActedOn | None = None,
) -> FastAPI:
    """Build the ingestion API.

    Args:
        settings: the write key and the size limits (``max_message_bytes``,
            ``max_batch_bytes``) come from here.
        session_factory: each request stores its calls in one transaction from this factory.
        router: called after the commit with the ids of this request's track events that
            still need routing.
        clock: ``received_at`` for every call; defaults to the UTC wall clock.
        metrics: served at ``GET /metrics`` and recorded into while the app is served;
            defaults to a fresh registry.
        readiness: checks ``GET /readyz`` runs besides the database's (e.g. Temporal).
        acted_on: the events some journey acts on (``enrollment.router.ActedOnEvents``);
            other calls are stored routed, without the router. None routes every track call.

    Returns:
        The FastAPI application; nothing is built before this call.
    """
    now: Clock = clock or utc_now
    limits = limits_of(settings)
    ingestor = Ingestor(session_factory, router=router, acted_on=acted_on)
    app = FastAPI(title="lifecycle ingestion API", docs_url=None, redoc_url=None)
    app.state.body_read_timeout = settings.body_read_timeout  # read by triggers.body

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def handle(
        request: Request, limit: int, parse: Callable[[bytes, datetime], Parsed], *, single: bool
    ) -> JSONResponse:
        reason = check_write_key(request.headers.get("authorization"), settings.write_key)
        if reason:
            return _unauthorized(reason)
        received_at = now()
        try:
            body = await read_body(request, limit)
            if len(body) > _PARSE_INLINE_BYTES:
                parsed = await run_in_threadpool(parse, body, received_at)
            else:
                parsed = parse(body, received_at)
        except PayloadError as exc:
            log.info("refused %s: %s (field %s)", request.url.path, exc.status, exc.field)
            return _error(exc)
        if parsed.refused:
            log.info("refused %d call(s) of %s", len(parsed.refused), request.url.path)
        try:
            await ingestor.ingest(
                parsed.messages, refused=parsed.refused, source=request.url.path, at=received_at
            )
        except RoutingFailed:
            return JSONResponse({"error": "stored but not routed; retry"}, status_code=503)
        except (OperationalError, InterfaceError) as exc:
            # The database is restarting or unreachable. A retry of the same calls is safe
            # (stored once by messageId), and Segment's clients retry a 503, not a 500.
            log.warning("database unavailable while storing %s: %s", request.url.path, exc.orig)
            return JSONResponse(
                {"error": "the database is unavailable; retry"},
                status_code=503,
                headers={"Retry-After": "2"},
            )
        if single and parsed.refused:
            first = parsed.refused[0]
            return _error(PayloadError(first.reason, field=first.field))
        if parsed.refused:
            return JSONResponse({**_SUCCESS, "refused": [r.body() for r in parsed.refused]})
        return JSONResponse(_SUCCESS)

    def single(kind: MessageType) -> Callable[[Request], Awaitable[JSONResponse]]:
        def parse(body: bytes, received_at: datetime) -> Parsed:
            return parse_single_body(kind, body, received_at=received_at, limits=limits)

        async def endpoint(request: Request) -> JSONResponse:
            return await handle(request, settings.max_message_bytes, parse, single=True)

        endpoint.__name__ = kind
        return endpoint

    for kind in MESSAGE_TYPES:
        app.add_api_route(
            f"/v1/{kind}",
            single(kind),
            methods=["POST"],
            summary=f"Send one {kind} call",
            responses=INGEST_RESPONSES,
            openapi_extra=request_body(call_schema(kind)),
        )

    def parse_many(body: bytes, received_at: datetime) -> Parsed:
        return parse_batch_body(body, received_at=received_at, limits=limits)

    @app.post(
        "/v1/batch",
        summary="Send many calls, judged one by one",
        responses=INGEST_RESPONSES,
        openapi_extra=request_body(BATCH_SCHEMA),
    )
    async def batch(request: Request) -> JSONResponse:
        return await handle(request, settings.max_batch_bytes, parse_many, single=False)

    def dead_letters() -> dict[str, Any]:
        with session_factory() as session:
            return {"dead_letters": pending_counts(session)}

    async def details() -> dict[str, Any]:
        return await run_in_threadpool(dead_letters)

    app.include_router(
        ops_router(
            metrics=metrics or PrometheusMetrics(),
            checks={"database": database_check(session_factory), **(readiness or {})},
            details=details,
        )
    )
    app.include_router(webhook_router(settings, session_factory=session_factory, clock=now))
    app.include_router(unsubscribe_router(settings, session_factory=session_factory, clock=now))
    app.include_router(
        admin_router(
            settings,
            session_factory=session_factory,
            runs=router if hasattr(router, "end_runs") else None,  # type: ignore[arg-type]
            clock=now,
        )
    )
    return app
