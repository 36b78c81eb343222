"""The web console, a FastAPI app mounted by the API process at ``/console``.

Pages (all behind the admin-token login): journeys (status, version, a diagram with live
counts, publish / pause / resume), audiences (rule, count, a sample with why each member
matched), the message ledger with filters, a user's profile and timeline, and reports.
State changes are POST forms carrying the session's CSRF token. No script runs in the
pages; styles are inline and the Content-Security-Policy forbids anything else.

The routes are in :mod:`console.routes`, one module per group; what they share is
:class:`console.deps.Console`, built here once per app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from config import Settings
from console.auth import LoginThrottle, SessionSigner
from console.deps import (
    MAX_FORM_BYTES,
    TEMPLATES,
    ConnectOnce,
    Console,
    Redirect,
    template_environment,
)
from console.growth import kpi_cache
from console.pages import ConsolePages
from console.routes import (
    audiences,
    broadcasts,
    builder,
    data,
    journeys,
    login,
    templates,
    versions,
)
from store.clock import utc_now
from store.db import SessionFactory
from store.money import Costs

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["MAX_FORM_BYTES", "SECURITY_HEADERS", "TEMPLATES", "console_app", "template_environment"]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def console_app(
    settings: Settings,
    *,
    session_factory: SessionFactory,
    clock: Callable[[], datetime] | None = None,
    login_throttle: LoginThrottle | None = None,
    temporal: Callable[[], Awaitable[Client]] | None = None,
) -> FastAPI:
    """Build the console; mount it with ``app.mount("/console", console_app(...))``.

    Args:
        settings: ``admin_token`` is the login; changing it ends every session.
        session_factory: each page reads in its own session; each action is one transaction.
        clock: "now" for audience counts and session expiry; defaults to the UTC wall clock.
        login_throttle: slows down wrong admin tokens per client address; a fresh one
            by default.
        temporal: the Temporal client the broadcast pages start and steer workflows with
            (the API process's own); by default one connected from settings on first need.
    """
    now = clock or utc_now
    console = Console(
        settings=settings,
        now=now,
        signer=SessionSigner(settings.admin_token),
        throttle=LoginThrottle() if login_throttle is None else login_throttle,
        pages=ConsolePages(
            session_factory,
            now=now,
            costs=Costs.of(settings),
            default_timezone=settings.default_timezone,
        ),
        env=template_environment(),
        kpis=kpi_cache(
            session_factory,
            clock=now,
            timezone=settings.default_timezone,
            targets=settings.kpi_targets,
            global_control_percent=settings.global_control_percent,
            global_control_salt=settings.global_control_salt,
            costs=Costs.of(settings),
        ),
        temporal=temporal or ConnectOnce(lambda: _temporal_client(settings)),
    )
    app = FastAPI(title="lifecycle console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    app.state.sessions = session_factory

    @app.exception_handler(Redirect)
    async def _redirect(_request: Request, exc: Redirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {403: "Forbidden", 404: "Not found", 413: "Too large"}
        return console.html(
            request,
            "error.html.j2",
            session=console.session_of(request),
            status_code=exc.status_code,
            title=titles.get(exc.status_code, "Error"),
            message=str(exc.detail),
        )

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    # The builder before the journeys: its /journeys/new is not the page of a journey "new".
    for routes in (login, builder, journeys, versions, audiences, data, templates, broadcasts):
        app.include_router(routes.router)
    return app


async def _temporal_client(settings: Settings) -> Client:
    import compose  # the Temporal SDK's import waits for the first page that needs it

    return await compose.temporal_client(settings)
