"""The journeys: the list, one journey's page (with who is where: open runs per step, waiting
until when), the users at a step, and its actions (pause, resume, publish, eject runs), each
a POST form carrying the session's CSRF token."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.deps import Console, ConsoleDep, base
from enrollment.runs_admin import (
    PLACES,
    SAMPLE,
    RunsAdmin,
    UnknownJourney,
    UnknownStep,
    Whereabouts,
)
from journeys.models import walk

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


# Runs asked for the journey page's who-is-where table (a random sample past it, scaled);
# the page of one step asks up to the service's own sample.
PAGE_SAMPLE = 500
CONNECT_TIMEOUT = 5.0


async def _runs(console: Console) -> RunsAdmin:
    """Who is where and ejecting runs, through the console's Temporal client (connected on
    first need); ``LookupError`` saying why when Temporal cannot be reached."""
    address = console.settings.temporal_address
    if console.temporal is None:
        raise LookupError("the console has no Temporal client")
    try:
        client = await asyncio.wait_for(console.temporal(), CONNECT_TIMEOUT)
    except (RuntimeError, TimeoutError) as exc:
        log.warning("console: Temporal at %s not reachable: %s", address, exc)
        raise LookupError(f"Temporal at {address} is not reachable") from None
    return console.pages.runs(client)


async def _where(console: Console, journey_id: str, sample: int) -> tuple[Whereabouts | None, str]:
    """Where the journey's open runs are, or why that cannot be said now."""
    try:
        return await (await _runs(console)).where(journey_id, sample=sample), ""
    except UnknownJourney:
        return None, ""
    except LookupError as exc:
        return None, f"Who is where cannot be shown: {exc}."


@router.get("/journeys/{journey_id}")
async def journey(
    request: Request, console: ConsoleDep, journey_id: str, did: str = ""
) -> Response:
    console.logged_in(request)
    page = await run_in_threadpool(console.pages.journey, journey_id)
    where: tuple[Whereabouts | None, str] = (None, "")
    if page is not None and page["totals"].running:
        where = await _where(console, journey_id, PAGE_SAMPLE)
    return console.show(
        request,
        "journey.html.j2",
        "journeys",
        lambda: page,
        f"No journey {journey_id!r} is published or shipped.",
        notice=console.pages.notice(did),
        errors=[],
        where=where[0],
        where_problem=where[1],
    )


async def _step_page(
    request: Request, console: Console, journey_id: str, step: str, **extra: Any
) -> dict[str, Any]:
    page = await run_in_threadpool(console.pages.journey, journey_id)
    if page is None:
        raise StarletteHTTPException(404, f"No journey {journey_id!r} is published or shipped.")
    where, problem = await _where(console, journey_id, SAMPLE)
    known = {s.id for s in walk(page["journey"].steps)} | set(PLACES)
    if step not in known and (where is None or not where.at(step).count):
        raise StarletteHTTPException(404, f"Journey {journey_id!r} has no step {step!r}.")
    return {
        "title": f"Who is at {step} · {page['journey'].name}",
        "journey": page["journey"],
        "step": step,
        "where": where,
        "at": where.at(step) if where else None,
        "where_problem": problem,
        "errors": [],
        "notice": "",
        **extra,
    }


@router.get("/journeys/{journey_id}/runs/{step}")
async def step_runs(
    request: Request, console: ConsoleDep, journey_id: str, step: str, ejected: int = -1
) -> Response:
    session = console.logged_in(request)
    notice = f"Ejected {ejected} run(s): each ends as ejected." if ejected >= 0 else ""
    page = await _step_page(request, console, journey_id, step, notice=notice)
    return console.html(
        request, "journey_runs.html.j2", session=session, section="journeys", **page
    )


@router.post("/journeys/{journey_id}/runs/{step}/eject")
async def eject(request: Request, console: ConsoleDep, journey_id: str, step: str) -> Response:
    fields = await console.checked_form(request)
    reason = fields.get("reason", "").strip()
    everyone = fields.get("whom") == "everyone"
    users = sorted({v for k, v in fields.items() if k.startswith("user.") and v})
    errors = []
    if not reason:
        errors.append("Say why: the reason is recorded with each ejection.")
    if not everyone and not users:
        errors.append("Select at least one user, or eject everyone at this step.")
    if errors:
        page = await _step_page(request, console, journey_id, step, errors=errors)
        return console.html(
            request,
            "journey_runs.html.j2",
            session=console.logged_in(request),
            section="journeys",
            status_code=400,
            **page,
        )
    try:
        done = await (await _runs(console)).eject(
            journey_id,
            actor="console",
            reason=reason,
            now=console.now(),
            user_ids=None if everyone else users,
            step=step,
        )
    except (UnknownJourney, UnknownStep) as exc:
        raise StarletteHTTPException(404, f"{str(exc).capitalize()}.") from None
    except LookupError as exc:
        raise StarletteHTTPException(503, f"Nobody was ejected: {exc}.") from None
    log.info("console: ejected %d run(s) of %s at %s", len(done.runs), journey_id, step)
    for run, why in done.failed:
        log.warning("console: %s's run of %s was not ejected (%s)", run.user_id, journey_id, why)
    target = f"{quote(journey_id, safe='')}/runs/{quote(step, safe='')}"
    return RedirectResponse(
        f"{base(request)}/journeys/{target}?ejected={len(done.runs)}", status_code=303
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
