"""The API process keeps its database connections: clients posting batches side by side reuse
the same ones, request after request, instead of opening and closing one per request (each a
new PostgreSQL backend: a process started, authenticated and torn down)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from conftest import Database
from sqlalchemy import event
from test_end_to_end import free_port

from api.server import build_app
from config import DEV_WRITE_KEY, Settings

CLIENTS = 8


def a_batch() -> dict[str, Any]:
    user = f"u-{uuid.uuid4().hex[:8]}"
    calls = [
        {"type": "track", "userId": user, "event": "product_viewed", "messageId": uuid.uuid4().hex}
        for _ in range(20)
    ]
    return {"batch": calls}


def test_clients_posting_side_by_side_reuse_the_processes_connections(db: Database) -> None:
    settings = Settings(
        database_url=db.url,
        temporal_address=f"127.0.0.1:{free_port()}",  # nothing there; nothing is routed
        api_db_connections=CLIENTS,
    )
    app = build_app(settings)
    engine: sa.Engine = app.state.services.session_factory.kw["bind"]
    opened: list[int] = []
    # Each wave's requests hold their connections at the same moment, whatever the
    # scheduling: a request's thread waits at its checkout until all of the wave's have one.
    together = threading.Barrier(CLIENTS, timeout=10)
    event.listen(engine, "connect", lambda *_: opened.append(1))
    event.listen(engine, "checkout", lambda *_: together.wait())

    async def wave() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", auth=(DEV_WRITE_KEY, "")
        ) as http:
            answers = await asyncio.gather(
                *(http.post("/v1/batch", json=a_batch()) for _ in range(CLIENTS))
            )
        assert [a.status_code for a in answers] == [200] * CLIENTS

    asyncio.run(wave())
    assert len(opened) == CLIENTS  # the first wave needs them all at once
    asyncio.run(wave())
    asyncio.run(wave())
    assert len(opened) == CLIENTS  # and the next waves open none

    with db.factory() as session:
        stored = session.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    assert stored == 3 * CLIENTS * 20
    engine.dispose()
