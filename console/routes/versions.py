"""A journey's draft (edit, save, compare with live, publish with a note), its versions (who,
when, why, each one's diff, roll back) and the simulation of its draft. Each action is a POST
form carrying the session's CSRF token; the actor recorded is "console"."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.deps import Console, ConsoleDep, base
from console.drafts import NOTICES, DraftPages
from console.simulations import SimulationJobs, jobs_of
from journeys.problems import JourneyError

log = logging.getLogger(__name__)

router = APIRouter()

REFRESH_SECONDS = 2


def get_drafts(request: Request, console: ConsoleDep) -> DraftPages:
    """The app's draft pages, made on first use on the console's own sessions and clock."""
    state = request.app.state
    drafts: DraftPages | None = getattr(state, "drafts", None)
    if drafts is None:
        drafts = state.drafts = DraftPages(state.sessions, now=console.now)
    return drafts


def get_jobs(request: Request, console: ConsoleDep) -> SimulationJobs:
    return jobs_of(request.app.state, console.settings, console.now)


DraftsDep = Annotated[DraftPages, Depends(get_drafts)]
JobsDep = Annotated[SimulationJobs, Depends(get_jobs)]


def _to(request: Request, journey_id: str, page: str, did: str = "") -> RedirectResponse:
    query = f"?did={did}" if did else ""
    url = f"{base(request)}/journeys/{quote(journey_id, safe='')}/{page}{query}"
    return RedirectResponse(url, status_code=303)


def _refused(
    console: Console, request: Request, template: str, page: dict[str, object], errors: list[str]
) -> Response:
    """The page again, with why the action was refused (400)."""
    return console.html(
        request,
        template,
        session=console.logged_in(request),
        status_code=400,
        section="journeys",
        notice="",
        refused=errors,
        **page,
    )


def _page(
    console: Console,
    request: Request,
    template: str,
    load: Callable[[], dict[str, Any] | None],
    missing: str,
    did: str,
) -> Response:
    return console.show(
        request, template, "journeys", load, missing, notice=NOTICES.get(did, ""), refused=[]
    )


@router.get("/journeys/{journey_id}/draft")
def draft(
    request: Request, console: ConsoleDep, drafts: DraftsDep, journey_id: str, did: str = ""
) -> Response:
    missing = f"No journey {journey_id!r} is drafted, published or shipped."
    return _page(console, request, "draft.html.j2", lambda: drafts.draft(journey_id), missing, did)


@router.post("/journeys/{journey_id}/draft")
async def save(
    request: Request, console: ConsoleDep, drafts: DraftsDep, journey_id: str
) -> Response:
    fields = await console.checked_form(request)
    await run_in_threadpool(drafts.save, journey_id, fields.get("yaml", ""))
    log.info("console: draft of %s saved", journey_id)
    return _to(request, journey_id, "draft", "saved")


@router.post("/journeys/{journey_id}/draft/publish")
async def publish(
    request: Request, console: ConsoleDep, drafts: DraftsDep, journey_id: str
) -> Response:
    fields = await console.checked_form(request)
    try:
        published = await run_in_threadpool(drafts.publish, journey_id, fields.get("note", ""))
    except LookupError as exc:
        raise StarletteHTTPException(404, str(exc)) from None
    except JourneyError as exc:
        page = await run_in_threadpool(drafts.draft, journey_id)
        assert page is not None  # the draft is there: it failed its checks
        errors = ["The draft is not published: fix its errors first.", *map(str, exc.problems)]
        return _refused(console, request, "draft.html.j2", page, errors)
    log.info("console: draft of %s published as v%s", journey_id, published.version.version)
    return _to(request, journey_id, "versions", "published" if published.changed else "unchanged")


@router.get("/journeys/{journey_id}/versions")
def versions(
    request: Request, console: ConsoleDep, drafts: DraftsDep, journey_id: str, did: str = ""
) -> Response:
    missing = f"No journey {journey_id!r} has been published."
    return _page(
        console, request, "versions.html.j2", lambda: drafts.versions(journey_id), missing, did
    )


@router.post("/journeys/{journey_id}/versions/{version}/rollback")
async def roll_back(
    request: Request, console: ConsoleDep, drafts: DraftsDep, journey_id: str, version: int
) -> Response:
    fields = await console.checked_form(request)
    try:
        published = await run_in_threadpool(
            drafts.rollback, journey_id, version, fields.get("note", "")
        )
    except LookupError as exc:
        raise StarletteHTTPException(404, str(exc)) from None
    except JourneyError as exc:
        page = await run_in_threadpool(drafts.versions, journey_id)
        assert page is not None  # the version exists: it failed today's checks
        errors = [f"v{version} no longer passes the checks:", *map(str, exc.problems)]
        return _refused(console, request, "versions.html.j2", page, errors)
    log.info("console: %s rolled back to v%s", journey_id, version)
    return _to(request, journey_id, "versions", "rolledback" if published.changed else "unchanged")


@router.post("/journeys/{journey_id}/draft/simulate")
async def simulate(
    request: Request, console: ConsoleDep, drafts: DraftsDep, jobs: JobsDep, journey_id: str
) -> Response:
    await console.checked_form(request)
    try:
        journey, source = await run_in_threadpool(drafts.to_simulate, journey_id)
    except LookupError as exc:
        raise StarletteHTTPException(404, str(exc)) from None
    except JourneyError as exc:
        page = await run_in_threadpool(drafts.draft, journey_id)
        assert page is not None
        errors = ["Only a journey without errors can be simulated.", *map(str, exc.problems)]
        return _refused(console, request, "draft.html.j2", page, errors)
    job, started = jobs.start(journey, source)
    log.info("console: simulating %s (%s)", journey_id, "started" if started else "running")
    return _to(request, journey_id, "draft/simulation")


@router.get("/journeys/{journey_id}/draft/simulation")
def simulation(request: Request, console: ConsoleDep, jobs: JobsDep, journey_id: str) -> Response:
    session = console.logged_in(request)
    job = jobs.get(journey_id)
    return console.html(
        request,
        "simulation.html.j2",
        session=session,
        section="journeys",
        title=f"Simulation · {journey_id}",
        journey_id=journey_id,
        job=job,
        refresh_after=REFRESH_SECONDS if job is not None and job.status == "running" else 0,
    )
