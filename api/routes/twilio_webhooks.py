"""``POST /webhooks/twilio/status`` (SMS status callbacks) and ``/webhooks/twilio/inbound``
(replies: opt-out and opt-in keywords), each signed with ``X-Twilio-Signature``.

The signature is checked over the URL Twilio called as the public sees it
(``settings.public_base_url`` + path). Unsigned or wrongly signed requests answer 403 and
change nothing; signed ones answer empty TwiML, so Twilio sends no reply of its own making.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.body import read_limited
from api.deps import Services, ServicesDep, SessionDep
from triggers.segment import PayloadError, shape_problem
from triggers.webhooks.twilio_sms import FormParams, apply_inbound, apply_status, park

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

router = APIRouter()


def twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


def _forbidden(reason: str) -> Response:
    return Response(reason, status_code=403, media_type="text/plain")


async def _verified_form(
    request: Request, services: ServicesDep, session: SessionDep
) -> FormParams | Response:
    """The form Twilio signed, or the 403 (or 413) to answer instead."""
    validator = services.twilio
    signature = request.headers.get("x-twilio-signature")
    if validator is None:
        log.warning("twilio webhook refused: LIFECYCLE_TWILIO_AUTH_TOKEN is not set")
        return _forbidden("Twilio webhooks are not configured.")
    if not signature:
        return _forbidden("Missing X-Twilio-Signature.")
    try:
        raw = await read_limited(request, MAX_FORM_BYTES)
    except PayloadError as exc:
        return Response(str(exc), status_code=exc.status, media_type="text/plain")
    try:
        params = FormParams(
            parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        )
    except UnicodeDecodeError:
        return _forbidden("Invalid X-Twilio-Signature.")
    url = services.settings.public_base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not validator.validate(url, params, signature):
        log.info("twilio webhook refused: bad signature on %s", request.url.path)
        return _forbidden("Invalid X-Twilio-Signature.")
    for name, value in params.items():
        problem = shape_problem(value, name)
        if problem is not None:  # a NUL: the database could not store it
            field, why = problem
            reason = f"{field} {why}."
            await run_in_threadpool(_park, session, request.url.path, params, reason, services)
            return Response(reason, status_code=400, media_type="text/plain")
    return params


def _park(
    session: Session, source: str, params: FormParams, reason: str, services: Services
) -> None:
    with session.begin():
        park(session, source=source, params=dict(params), reason=reason, at=services.clock())


@router.post("/webhooks/twilio/status")
async def status_callback(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    params = await _verified_form(request, services, session)
    if isinstance(params, Response):
        return params
    outcome = await run_in_threadpool(apply_status, session, params, services.clock())
    log.info(
        "twilio status %s for %s: %s",
        params.get("MessageStatus"),
        params.get("MessageSid"),
        outcome.kind,
    )
    return twiml()


@router.post("/webhooks/twilio/inbound")
async def inbound(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    params = await _verified_form(request, services, session)
    if isinstance(params, Response):
        return params
    outcome = await run_in_threadpool(apply_inbound, session, params, services.clock())
    if outcome.kind in ("stop", "start"):
        # Ids and counts only: the number stays out of the logs.
        log.info(
            "sms keyword %s (message %s): %d user(s) changed",
            outcome.kind,
            params.get("MessageSid"),
            outcome.users,
        )
    return twiml()
