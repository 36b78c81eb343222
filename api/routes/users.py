"""``DELETE /v1/users/{id}``: the platform's erasure request, with the admin token only.

A user id may contain ``/``, written plain or as ``%2F``. The profile and its history go in
one transaction; the user's open journey runs are ended after it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import AdminToken, ServicesDep, SessionDep
from store.erasure import forget_user

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[AdminToken])


# ``path``: ids such as "tenant/7/u1" reach here whole (the server decodes %2F first).
@router.delete("/v1/users/{user_id:path}")
async def forget(user_id: str, session: SessionDep, services: ServicesDep) -> JSONResponse:
    def erase() -> list[str]:
        with session.begin():
            return forget_user(session, user_id=user_id, now=services.clock()).open_runs

    open_runs = await run_in_threadpool(erase)
    ended = 0
    if services.runs is not None and open_runs:
        try:
            await services.runs.end_runs(open_runs, reason="user erased")
            ended = len(open_runs)
        except Exception:  # the profile is gone: a run left behind only skips its sends
            log.exception("could not end %d run(s) of an erased user", len(open_runs))
    return JSONResponse({"erased": True, "runs_ended": ended})
