"""The API's journey router, whose Temporal client is made when first needed."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from config import Settings
from enrollment.router import JourneyRouter
from store.db import SessionFactory
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
                    self._router = JourneyRouter.from_settings(
                        self._settings, factory=self._factory, client=self._client
                    )
        return self._router
