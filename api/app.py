"""The HTTP API as one FastAPI app: the routers of :mod:`api.routes` composed over the
services built here.

The platform's calls (Segment's tracking API under ``/v1/``, with the write key), the
operator's (``/v1/admin/``, ``DELETE /v1/users/{id}``, with the admin token), the providers'
webhooks, the unsubscribe pages and the probes (``/healthz``, ``/readyz``, ``/metrics``, no
key). Every error is ``{"error": "<sentence>"}``, with ``"field"`` where one is at fault.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from twilio.request_validator import RequestValidator

from api.deps import Services
from api.routes import (
    admin,
    health,
    ingestion,
    sendgrid_webhooks,
    twilio_webhooks,
    unsubscribe,
    users,
)
from config import Settings
from message_templates.unsubscribe_links import UnsubscribeLinks
from observability.health import Check
from observability.metrics import PrometheusMetrics
from store.clock import Clock, utc_now
from store.db import SessionFactory
from triggers.ingest import ActedOn, EventRouter, Ingestor, RunEnder
from triggers.segment import limits_of
from triggers.webhooks.sendgrid_email import load_verification_key


def create_app(
    settings: Settings,
    *,
    session_factory: SessionFactory,
    router: EventRouter,
    clock: Clock | None = None,
    metrics: PrometheusMetrics | None = None,
    readiness: Mapping[str, Check] | None = None,
    acted_on: ActedOn | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: the write key, the admin token, the size limits, the providers' secrets
            and the unsubscribe links' secret come from here.
        session_factory: each request's changes commit in one transaction from this factory.
        router: called after the commit with the ids of this request's track events that
            still need routing; if it can also ``end_runs``, an erased user's runs end.
        clock: ``received_at`` for every call, and the time of every change; defaults to the
            UTC wall clock.
        metrics: served at ``GET /metrics`` and recorded into while the app is served;
            defaults to a fresh registry.
        readiness: checks ``GET /readyz`` runs besides the database's (e.g. Temporal).
        acted_on: the events some journey acts on (``enrollment.router.ActedOnEvents``);
            other calls are stored routed, without the router. None routes every track call.

    Returns:
        The FastAPI application; nothing is built before this call.
    """
    app = FastAPI(title="lifecycle ingestion API", docs_url=None, redoc_url=None)
    app.state.services = _services(settings, session_factory, router, clock or utc_now, acted_on)
    app.state.body_read_timeout = settings.body_read_timeout  # read by api.body

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    # In this order, which is the order of the OpenAPI document's paths.
    app.include_router(health.router)
    app.include_router(ingestion.router)
    app.include_router(
        health.ops_routes(
            session_factory=session_factory,
            metrics=metrics or PrometheusMetrics(),
            readiness=readiness or {},
        )
    )
    app.include_router(twilio_webhooks.router)
    app.include_router(sendgrid_webhooks.router)
    app.include_router(unsubscribe.router)
    app.include_router(admin.router)
    app.include_router(users.router)
    return app


def _services(
    settings: Settings,
    session_factory: SessionFactory,
    router: EventRouter,
    clock: Clock,
    acted_on: ActedOn | None,
) -> Services:
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    sendgrid_key = settings.sendgrid_webhook_public_key
    # Built in the order the routes once built them: a bad SendGrid key is named first.
    twilio = RequestValidator(token) if token else None
    sendgrid = (
        load_verification_key(sendgrid_key) if sendgrid_key and sendgrid_key.strip() else None
    )
    links = UnsubscribeLinks.from_settings(settings)
    runs: RunEnder | None = router if hasattr(router, "end_runs") else None  # type: ignore[assignment]
    return Services(
        settings=settings,
        session_factory=session_factory,
        clock=clock,
        ingestor=Ingestor(session_factory, router=router, acted_on=acted_on),
        limits=limits_of(settings),
        runs=runs,
        unsubscribe_links=links,
        twilio=twilio,
        sendgrid=sendgrid,
    )
