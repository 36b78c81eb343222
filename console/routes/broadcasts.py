"""The broadcasts: the list, a new broadcast (its form, its preview after the delivery policy,
scheduling it), one broadcast's progress and ledger with its pause / resume / cancel forms,
and its money review."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from console.deps import ConsoleDep
from store.broadcasts import list_broadcasts
from store.db import SessionFactory

router = APIRouter()


async def get_sessions(request: Request) -> SessionFactory:
    sessions: SessionFactory = request.app.state.sessions
    return sessions


SessionsDep = Annotated[SessionFactory, Depends(get_sessions)]


@router.get("/broadcasts")
def broadcasts(request: Request, console: ConsoleDep, sessions: SessionsDep) -> Response:
    def load() -> dict[str, Any]:
        with sessions() as session:
            return {"title": "Broadcasts", "broadcasts": list_broadcasts(session)}

    return console.show(request, "broadcasts.html.j2", "broadcasts", load)
