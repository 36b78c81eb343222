"""Segment's tracking API: ``POST /v1/identify``, ``/v1/track``, ``/v1/page``, ``/v1/screen``,
``/v1/group``, ``/v1/alias`` and ``/v1/batch``, with the write key.

A batch is judged item by item, as Segment does: the good calls are stored, the refused ones
go to the dead-letter table and are listed in the answer (``"refused": [{"index",
"messageId", "field", "reason"}]``), still with 200; only a body that is unreadable or too
large is refused whole. A refused single call is kept in the dead-letter table too and
answered 400. Errors are ``{"error": "<sentence>", "field": "<path>"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from api.body import read_body
from api.deps import ServicesDep, WriteKey
from api.openapi import BATCH_SCHEMA, INGEST_RESPONSES, call_schema, request_body
from triggers.ingest import RoutingFailed
from triggers.segment import (
    MESSAGE_TYPES,
    Limits,
    MessageType,
    Parsed,
    PayloadError,
    parse_batch_body,
    parse_single_body,
)

log = logging.getLogger(__name__)

_SUCCESS = {"success": True}
# Bodies larger than this are parsed off the event loop (a full batch takes milliseconds).
_PARSE_INLINE_BYTES = 64 * 1024

Parse = Callable[[bytes, datetime, Limits], Parsed]

router = APIRouter(dependencies=[WriteKey])


def _error(exc: PayloadError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _ingest(
    request: Request, services: ServicesDep, limit: int, parse: Parse, *, single: bool
) -> JSONResponse:
    """Read, judge and store one request's calls, and answer as Segment's clients expect."""
    received_at = services.clock()
    try:
        body = await read_body(request, limit)
        if len(body) > _PARSE_INLINE_BYTES:
            parsed = await run_in_threadpool(parse, body, received_at, services.limits)
        else:
            parsed = parse(body, received_at, services.limits)
    except PayloadError as exc:
        log.info("refused %s: %s (field %s)", request.url.path, exc.status, exc.field)
        return _error(exc)
    if parsed.refused:
        log.info("refused %d call(s) of %s", len(parsed.refused), request.url.path)
    try:
        await services.ingestor.ingest(
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


def _parse_single(kind: MessageType, body: bytes, received_at: datetime, limits: Limits) -> Parsed:
    return parse_single_body(kind, body, received_at=received_at, limits=limits)


def _parse_batch(body: bytes, received_at: datetime, limits: Limits) -> Parsed:
    return parse_batch_body(body, received_at=received_at, limits=limits)


def _single_call(kind: MessageType) -> Callable[[Request, ServicesDep], Awaitable[JSONResponse]]:
    parse = partial(_parse_single, kind)

    async def endpoint(request: Request, services: ServicesDep) -> JSONResponse:
        limit = services.settings.max_message_bytes
        return await _ingest(request, services, limit, parse, single=True)

    endpoint.__name__ = kind  # the operation id: "track_v1_track_post"
    return endpoint


for _kind in MESSAGE_TYPES:
    router.add_api_route(
        f"/v1/{_kind}",
        _single_call(_kind),
        methods=["POST"],
        summary=f"Send one {_kind} call",
        responses=INGEST_RESPONSES,
        openapi_extra=request_body(call_schema(_kind)),
    )


@router.post(
    "/v1/batch",
    summary="Send many calls, judged one by one",
    responses=INGEST_RESPONSES,
    openapi_extra=request_body(BATCH_SCHEMA),
)
async def batch(request: Request, services: ServicesDep) -> JSONResponse:
    limit = services.settings.max_batch_bytes
    return await _ingest(request, services, limit, _parse_batch, single=False)
