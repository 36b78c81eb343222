"""``POST /v1/admin/pause-all`` and ``/v1/admin/resume-all``: stop every send at once (held,
not lost) and start again. The admin token only (``Authorization: Bearer <token>``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import AdminToken, ClockDep, SessionDep
from store.control import set_sends_paused

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[AdminToken])


async def _switch(session: SessionDep, clock: ClockDep, paused: bool) -> JSONResponse:
    def set_paused() -> None:
        with session.begin():
            set_sends_paused(session, paused=paused, now=clock())

    await run_in_threadpool(set_paused)
    log.warning("all sends %s by an operator", "paused" if paused else "resumed")
    return JSONResponse({"sends_paused": paused})


@router.post("/v1/admin/pause-all")
async def pause_all(session: SessionDep, clock: ClockDep) -> JSONResponse:
    return await _switch(session, clock, True)


@router.post("/v1/admin/resume-all")
async def resume_all(session: SessionDep, clock: ClockDep) -> JSONResponse:
    return await _switch(session, clock, False)
