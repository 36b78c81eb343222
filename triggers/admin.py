"""Operator endpoints: stop every send at once (held, not lost), and forget a user.

Every route takes ``Authorization: Bearer <admin token>``: ``POST /v1/admin/pause-all``,
``/v1/admin/resume-all`` and ``DELETE /v1/users/{id}``, the platform's erasure request. The
write key is not enough to erase: it ships inside apps and web pages, where anyone can read it.
A user id may contain ``/``, written plain or as ``%2F``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from config import Settings
from store.control import set_sends_paused
from store.db import SessionFactory, transaction
from store.erasure import forget_user

log = logging.getLogger(__name__)


class RunEnder(Protocol):
    async def end_runs(self, workflow_ids: list[str], *, reason: str) -> None: ...


def _admin(request: Request, settings: Settings) -> bool:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    expected = settings.admin_token.encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


def admin_router(
    settings: Settings,
    *,
    session_factory: SessionFactory,
    runs: RunEnder | None,
    clock: Callable[[], datetime],
) -> APIRouter:
    """The operator routes, bound to the database and to what ends Temporal runs."""
    router = APIRouter()

    def set_paused(paused: bool) -> None:
        with transaction(session_factory) as session:
            set_sends_paused(session, paused=paused, now=clock())

    def refused() -> JSONResponse:
        return JSONResponse({"error": "admin token required (Bearer)"}, status_code=401)

    async def switch(request: Request, paused: bool) -> JSONResponse:
        if not _admin(request, settings):
            return refused()
        await run_in_threadpool(set_paused, paused)
        log.warning("all sends %s by an operator", "paused" if paused else "resumed")
        return JSONResponse({"sends_paused": paused})

    @router.post("/v1/admin/pause-all")
    async def pause_all(request: Request) -> JSONResponse:
        return await switch(request, True)

    @router.post("/v1/admin/resume-all")
    async def resume_all(request: Request) -> JSONResponse:
        return await switch(request, False)

    # ``path``: ids such as "tenant/7/u1" reach here whole (the server decodes %2F first).
    @router.delete("/v1/users/{user_id:path}")
    async def forget(user_id: str, request: Request) -> JSONResponse:
        if not _admin(request, settings):
            return refused()

        def erase() -> list[str]:
            with transaction(session_factory) as session:
                return forget_user(session, user_id=user_id, now=clock()).open_runs

        open_runs = await run_in_threadpool(erase)
        ended = 0
        if runs is not None and open_runs:
            try:
                await runs.end_runs(open_runs, reason="user erased")
                ended = len(open_runs)
            except Exception:  # the profile is gone: a run left behind only skips its sends
                log.exception("could not end %d run(s) of an erased user", len(open_runs))
        return JSONResponse({"erased": True, "runs_ended": ended})

    return router
