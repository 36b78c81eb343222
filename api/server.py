"""The API process: builds the app from settings, connecting to Temporal on first need, with
the web console at ``/console`` and the browser host check (:mod:`api.hosts`)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

import compose
from api.app import create_app
from api.hosts import BrowserHostCheck, allowed_hosts
from config import Settings, load_settings
from console.app import console_app
from enrollment.router import ActedOnEvents
from observability.health import temporal_check
from observability.logs import configure_logging, redact_access_log
from triggers.connecting import ConnectingRouter


def build_app(settings: Settings) -> FastAPI:
    """The ingestion API wired to the database and Temporal named in ``settings``, with the
    web console at ``/console``."""
    redact_access_log()  # also when uvicorn, not ``lifecycle api``, set up the logging
    # A pool as large as the requests that store at once: with the dialect's 5, a few
    # clients posting batches side by side opened and closed a connection per request.
    engine = compose.engine(settings, pool_size=settings.api_db_connections)
    factory = compose.session_factory(settings, on=engine)
    router = ConnectingRouter(settings, factory)
    app = create_app(
        settings,
        session_factory=factory,
        router=router,
        clock=compose.clock,
        readiness={"temporal": temporal_check(router.client)},
        # Events no journey acts on are stored routed: no router, no Temporal call.
        acted_on=ActedOnEvents(),
    )
    # The console asks Temporal (who is where, broadcasts) through the API's own connection.
    console = console_app(
        settings, session_factory=factory, clock=compose.clock, temporal=router.client
    )
    app.mount("/console", console)
    app.add_middleware(BrowserHostCheck, hosts=allowed_hosts(settings))
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory api.server:app_from_env`` (and for each process
    of ``lifecycle api`` with ``LIFECYCLE_API_WORKERS`` above 1)."""
    settings = load_settings()
    configure_logging(settings.log_format)
    app = build_app(settings)
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Keep what the process loaded to start (modules, the app, the schemas) out of the
    garbage collector's scans: profiled under a stream of batches, the collector walked
    those objects again and again, 14% of the API's samples. Call it once the app is built,
    before serving."""
    gc.collect()
    gc.freeze()
