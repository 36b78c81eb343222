"""The journeys: the list, one journey's page, and its actions (pause, resume, publish), each
a POST form carrying the session's CSRF token."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.deps import Console, ConsoleDep, base

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/journeys")
def journeys(request: Request, console: ConsoleDep, did: str = "") -> Response:
    return console.show(
        request,
        "journeys.html.j2",
        "journeys",
        lambda: {"title": "Journeys", "journeys": console.pages.journeys()},
        notice=console.pages.notice(did),
    )


@router.get("/journeys/{journey_id}")
def journey(request: Request, console: ConsoleDep, journey_id: str, did: str = "") -> Response:
    return console.show(
        request,
        "journey.html.j2",
        "journeys",
        lambda: console.pages.journey(journey_id),
        f"No journey {journey_id!r} is published or shipped.",
        notice=console.pages.notice(did),
        errors=[],
    )


async def _status_change(
    console: Console, request: Request, journey_id: str, status: str, did: str
) -> Response:
    await console.checked_form(request)
    try:
        await run_in_threadpool(console.pages.set_status, journey_id, status)
    except LookupError:
        raise StarletteHTTPException(
            404, f"No journey {journey_id!r} has been published."
        ) from None
    log.info("console: journey %s set to %s", journey_id, status)
    return RedirectResponse(
        f"{base(request)}/journeys/{quote(journey_id, safe='')}?did={did}", status_code=303
    )


@router.post("/journeys/{journey_id}/pause")
async def pause(request: Request, console: ConsoleDep, journey_id: str) -> Response:
    return await _status_change(console, request, journey_id, "paused", "paused")


@router.post("/journeys/{journey_id}/resume")
async def resume(request: Request, console: ConsoleDep, journey_id: str) -> Response:
    return await _status_change(console, request, journey_id, "published", "resumed")


@router.post("/journeys/publish")
async def publish(request: Request, console: ConsoleDep) -> Response:
    fields = await console.checked_form(request)
    pages = console.pages
    outcome = await run_in_threadpool(
        pages.publish, shipped=fields.get("shipped", ""), text=fields.get("yaml", "")
    )
    if outcome.errors or outcome.journey_id is None:
        shown = outcome.journey_id or fields.get("journey", "")
        page = await run_in_threadpool(pages.journey, shown) if shown else None
        if page is None:
            raise StarletteHTTPException(400, "\n".join(outcome.errors))
        page["source"] = fields.get("yaml") or page["source"]
        response = console.html(
            request,
            "journey.html.j2",
            session=console.logged_in(request),
            section="journeys",
            notice="",
            errors=outcome.errors,
            **page,
        )
        response.status_code = 400
        return response
    log.info("console: journey %s published as version %s", outcome.journey_id, outcome.version)
    target = quote(outcome.journey_id, safe="")
    return RedirectResponse(f"{base(request)}/journeys/{target}?did={outcome.did}", status_code=303)
