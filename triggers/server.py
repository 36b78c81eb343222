"""The API process: builds the app from settings, connecting to Temporal on first need.

Browsers must reach it by one of its own names (:func:`allowed_hosts`): any other ``Host``
is answered 400, so no redirect or page is ever built on a forged one. Machine endpoints
(ingestion and admin under ``/v1/``, provider webhooks, ``/healthz``, ``/readyz``,
``/metrics``) are exempt: they check a key or a signature, build nothing from the Host, and
are called by names the operator may not list (a probe uses the pod's IP, a platform a
cluster-internal service name), where a 400 would drop events.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client

from config import Settings, load_settings
from console.app import console_app
from enrollment.router import ActedOnEvents, JourneyRouter
from observability.health import temporal_check
from observability.logs import configure_logging, redact_access_log
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
                        max_attempts=self._settings.max_route_attempts,
                    )
        return self._router


_MACHINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_MACHINE_PREFIXES = ("/v1/", "/webhooks/")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _host_pattern(host: str) -> str:
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):  # an IPv6 literal, as a Host header has it
        return f"[{host}]"
    return host


def allowed_hosts(settings: Settings) -> list[str]:
    """The ``Host`` names browsers may use: the loopback names, the public URL's host, the
    API host unless it listens everywhere, and ``LIFECYCLE_ALLOWED_HOSTS`` ("*": any)."""
    if "*" in settings.allowed_hosts:
        return ["*"]
    hosts = [*_LOOPBACK_NAMES, urlsplit(settings.public_base_url).hostname or ""]
    if settings.api_host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        hosts.append(settings.api_host)
    hosts += settings.allowed_hosts
    return sorted({_host_pattern(host) for host in hosts if host.strip()})


class BrowserHostCheck:
    """Starlette's :class:`TrustedHostMiddleware` for every path but the machine endpoints."""

    def __init__(self, app: ASGIApp, *, hosts: list[str]) -> None:
        self._app = app
        self._checked = TrustedHostMiddleware(app, allowed_hosts=hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if path in _MACHINE_PATHS or path.startswith(_MACHINE_PREFIXES):
            await self._app(scope, receive, send)
        else:
            await self._checked(scope, receive, send)


def build_app(settings: Settings) -> FastAPI:
    """The ingestion API wired to the database and Temporal named in ``settings``, with the
    web console at ``/console``."""
    redact_access_log()  # also when uvicorn, not ``lifecycle api``, set up the logging
    factory = make_session_factory(make_engine(settings.database_url))
    router = ConnectingRouter(settings, factory)
    app = create_app(
        settings,
        session_factory=factory,
        router=router,
        readiness={"temporal": temporal_check(router.client)},
        # Events no journey acts on are stored routed: no router, no Temporal call.
        acted_on=ActedOnEvents(factory),
    )
    app.mount("/console", console_app(settings, session_factory=factory))
    app.add_middleware(BrowserHostCheck, hosts=allowed_hosts(settings))
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory triggers.server:app_from_env`` (and for each process
    of ``lifecycle api`` with ``LIFECYCLE_API_WORKERS`` above 1)."""
    settings = load_settings()
    configure_logging(settings.log_format)
    return build_app(settings)
