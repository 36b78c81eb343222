"""``POST /webhooks/sendgrid``: SendGrid's Event Webhook, a JSON array of events signed with
ECDSA. A request that is unsigned, wrongly signed or stale answers 403 and changes nothing;
the events of a signed one are applied in one transaction (see
:mod:`triggers.webhooks.sendgrid_email`)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.body import read_limited
from api.deps import ServicesDep, SessionDep
from triggers.segment import PayloadError
from triggers.webhooks.sendgrid_email import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    apply_events,
    signature_problem,
)

log = logging.getLogger(__name__)

router = APIRouter()


@router.post("/webhooks/sendgrid")
async def events(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    try:
        body = await read_limited(request, MAX_BODY_BYTES)
    except PayloadError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    at = services.clock()
    problem = signature_problem(
        services.sendgrid,
        body=body,
        signature=request.headers.get(SIGNATURE_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        now=at,
    )
    if problem is not None:
        log.info("sendgrid webhook refused: %s", problem)
        return JSONResponse({"error": problem}, status_code=403)
    try:
        batch = json.loads(body)
    except ValueError:
        return JSONResponse({"error": "Body is not JSON."}, status_code=400)
    if not isinstance(batch, list) or not all(isinstance(e, dict) for e in batch):
        return JSONResponse({"error": "Body must be a JSON array of events."}, status_code=400)

    def store(events: list[dict[str, Any]]) -> Counter[str]:
        with session.begin():
            return apply_events(session, events, received_at=at)

    outcomes = await run_in_threadpool(store, batch)
    log.info("sendgrid events: %s", dict(outcomes))
    return JSONResponse({"success": True})
