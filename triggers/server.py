"""The API process: builds the app from settings, connecting to Temporal on first need."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from temporalio.client import Client

from config import Settings, load_settings
from console.app import console_app
from enrollment.router import JourneyRouter
from observability.health import temporal_check
from store.db import SessionFactory, make_engine, make_session_factory
from triggers.api import create_app
from triggers.temporal_client import connect


class ConnectingRouter:
    """A :class:`JourneyRouter` whose Temporal client is made when first needed.

    The API starts (and stores events) even while Temporal is still coming up; events
    stored meanwhile answer 503 and are routed on the client's retry.
    """

    def __init__(self, settings: Settings, factory: SessionFactory):
        self._settings = settings
        self._factory = factory
        self._router: JourneyRouter | None = None
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def route(self, event_ids: list[int]) -> None:
        await (await self._connected()).route(event_ids)

    async def end_runs(self, workflow_ids: list[str], *, reason: str) -> None:
        await (await self._connected()).end_runs(workflow_ids, reason=reason)

    async def client(self) -> Client:
        """The Temporal client, connecting first if nothing has yet."""
        await self._connected()
        assert self._client is not None
        return self._client

    async def _connected(self) -> JourneyRouter:
        if self._router is None:
            async with self._lock:
                if self._router is None:
                    self._client = await connect(self._settings)
                    self._router = JourneyRouter(
                        factory=self._factory,
                        client=self._client,
                        task_queue=self._settings.task_queue,
                        max_trigger_age=self._settings.max_trigger_age,
                    )
        return self._router


def build_app(settings: Settings) -> FastAPI:
    """The ingestion API wired to the database and Temporal named in ``settings``, with the
    web console at ``/console``."""
    factory = make_session_factory(make_engine(settings.database_url))
    router = ConnectingRouter(settings, factory)
    app = create_app(
        settings,
        session_factory=factory,
        router=router,
        readiness={"temporal": temporal_check(router.client)},
    )
    app.mount("/console", console_app(settings, session_factory=factory))
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory triggers.server:app_from_env``."""
    return build_app(load_settings())
