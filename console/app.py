"""The web console, a FastAPI app mounted by the API process at ``/console``.

Pages (all behind the admin-token login): journeys (status, version, a diagram with live
counts, publish / pause / resume), audiences (rule, count, a sample with why each member
matched), the message ledger with filters, a user's profile and timeline, and reports.
State changes are POST forms carrying the session's CSRF token. No script runs in the
pages; styles are inline and the Content-Security-Policy forbids anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from config import Settings
from console.auth import (
    COOKIE,
    SESSION_LIFETIME,
    ConsoleSession,
    LoginThrottle,
    SessionSigner,
    csrf_ok,
)
from console.growth import growth_page, kpi_cache, window_start
from console.pages import ConsolePages
from devstack.views import _pct, _span
from store.db import SessionFactory
from store.money import Costs
from store.reports import DEFERRAL_REASONS
from triggers.api import limits_of

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 256 * 1024
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


def _when(value: datetime | None) -> str:
    return "—" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def template_environment() -> Environment:
    """Jinja2 for the console: every value is HTML-escaped unless it is Markup (the SVG)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["when"] = _when
    env.filters["pct"] = _pct
    env.filters["ci"] = _span
    env.globals["deferral_reasons"] = DEFERRAL_REASONS
    return env


class _Redirect(Exception):
    def __init__(self, url: str):
        self.url = url


def console_app(
    settings: Settings,
    *,
    session_factory: SessionFactory,
    clock: Callable[[], datetime] | None = None,
    login_throttle: LoginThrottle | None = None,
) -> FastAPI:
    """Build the console; mount it with ``app.mount("/console", console_app(...))``.

    Args:
        settings: ``admin_token`` is the login; changing it ends every session.
        session_factory: each page reads in its own session; each action is one transaction.
        clock: "now" for audience counts and session expiry; defaults to the UTC wall clock.
        login_throttle: slows down wrong admin tokens per client address; a fresh one
            by default.
    """
    now = clock or (lambda: datetime.now(UTC))
    signer = SessionSigner(settings.admin_token)
    throttle = LoginThrottle() if login_throttle is None else login_throttle
    pages = ConsolePages(
        session_factory,
        now=now,
        costs=Costs.of(settings),
        default_timezone=settings.default_timezone,
    )
    env = template_environment()
    app = FastAPI(title="lifecycle console", docs_url=None, redoc_url=None, openapi_url=None)

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def html(
        request: Request,
        template: str,
        *,
        session: ConsoleSession | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        body = env.get_template(template).render(
            base=base(request), csrf=session.csrf if session else "", **context
        )
        return HTMLResponse(body, status_code=status_code)

    def logged_in(request: Request) -> ConsoleSession:
        session = signer.read(request.cookies.get(COOKIE), now=now())
        if session is None:
            raise _Redirect(f"{base(request)}/login")
        return session

    async def form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise StarletteHTTPException(413, "The form is too large.")
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in fields.items()}

    async def checked_form(request: Request) -> dict[str, str]:
        """The fields of a state-changing form from a logged-in session with its CSRF token."""
        session = logged_in(request)
        fields = await form(request)
        if not csrf_ok(session, fields.get("csrf")):
            log.warning("console: refused %s (CSRF token missing or wrong)", request.url.path)
            raise StarletteHTTPException(
                403, "This form is stale or did not come from the console: reload and retry."
            )
        return fields

    @app.exception_handler(_Redirect)
    async def _redirect(_request: Request, exc: _Redirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        session = signer.read(request.cookies.get(COOKIE), now=now())
        titles = {403: "Forbidden", 404: "Not found", 413: "Too large"}
        return html(
            request,
            "error.html.j2",
            session=session,
            status_code=exc.status_code,
            title=titles.get(exc.status_code, "Error"),
            message=str(exc.detail),
        )

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse(f"{base(request)}/journeys", status_code=303)

    @app.get("/login")
    async def login_form(request: Request) -> Response:
        if signer.read(request.cookies.get(COOKIE), now=now()) is not None:
            return RedirectResponse(f"{base(request)}/journeys", status_code=303)
        return html(request, "login.html.j2", session=None, title="Log in", error=None)

    def login_refused(request: Request, status_code: int, error: str) -> HTMLResponse:
        return html(
            request,
            "login.html.j2",
            session=None,
            status_code=status_code,
            title="Log in",
            error=error,
        )

    def too_many(request: Request, wait: int) -> HTMLResponse:
        error = f"Too many wrong tokens from your address: try again in {wait} s."
        answer = login_refused(request, 429, error)
        answer.headers["Retry-After"] = str(wait)
        return answer

    @app.post("/login")
    async def login(request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        wait = throttle.retry_after(address)
        if wait:
            return too_many(request, wait)
        fields = await form(request)
        if not signer.token_ok(fields.get("token", "")):
            wait = throttle.failed(address)
            log.warning(
                "console: a login with a wrong admin token was refused (%s)",
                f"next attempt in {wait} s" if wait else "not throttled yet",
            )
            if wait:
                return too_many(request, wait)
            return login_refused(request, 401, "That is not the admin token.")
        throttle.succeeded(address)
        cookie, _ = signer.new_cookie(now=now())
        response = RedirectResponse(f"{base(request)}/journeys", status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path=base(request) or "/",
            httponly=True,
            samesite="strict",
            # Behind a TLS-terminating proxy the request is plain HTTP; the public URL is not.
            secure=request.url.scheme == "https" or settings.public_base_url.startswith("https://"),
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        response = RedirectResponse(f"{base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=base(request) or "/")
        return response

    def show(
        request: Request,
        template: str,
        section: str,
        load: Callable[[], dict[str, Any] | None],
        missing: str = "",
        **extra: Any,
    ) -> Response:
        """A page for a logged-in session; 404 with ``missing`` when ``load`` finds nothing."""
        session = logged_in(request)
        page = load()
        if page is None:
            raise StarletteHTTPException(404, missing)
        return html(request, template, session=session, section=section, **extra, **page)

    @app.get("/journeys")
    def journeys(request: Request, did: str = "") -> Response:
        return show(
            request,
            "journeys.html.j2",
            "journeys",
            lambda: {"title": "Journeys", "journeys": pages.journeys()},
            notice=pages.notice(did),
        )

    @app.get("/journeys/{journey_id}")
    def journey(request: Request, journey_id: str, did: str = "") -> Response:
        return show(
            request,
            "journey.html.j2",
            "journeys",
            lambda: pages.journey(journey_id),
            f"No journey {journey_id!r} is published or shipped.",
            notice=pages.notice(did),
            errors=[],
        )

    async def status_change(request: Request, journey_id: str, status: str, did: str) -> Response:
        await checked_form(request)
        try:
            await run_in_threadpool(pages.set_status, journey_id, status)
        except LookupError:
            raise StarletteHTTPException(
                404, f"No journey {journey_id!r} has been published."
            ) from None
        log.info("console: journey %s set to %s", journey_id, status)
        return RedirectResponse(
            f"{base(request)}/journeys/{quote(journey_id, safe='')}?did={did}", status_code=303
        )

    @app.post("/journeys/{journey_id}/pause")
    async def pause(request: Request, journey_id: str) -> Response:
        return await status_change(request, journey_id, "paused", "paused")

    @app.post("/journeys/{journey_id}/resume")
    async def resume(request: Request, journey_id: str) -> Response:
        return await status_change(request, journey_id, "published", "resumed")

    @app.post("/journeys/publish")
    async def publish(request: Request) -> Response:
        fields = await checked_form(request)
        outcome = await run_in_threadpool(
            pages.publish, shipped=fields.get("shipped", ""), text=fields.get("yaml", "")
        )
        if outcome.errors or outcome.journey_id is None:
            shown = outcome.journey_id or fields.get("journey", "")
            page = await run_in_threadpool(pages.journey, shown) if shown else None
            if page is None:
                raise StarletteHTTPException(400, "\n".join(outcome.errors))
            page["source"] = fields.get("yaml") or page["source"]
            response = html(
                request,
                "journey.html.j2",
                session=logged_in(request),
                section="journeys",
                notice="",
                errors=outcome.errors,
                **page,
            )
            response.status_code = 400
            return response
        log.info("console: journey %s published as version %s", outcome.journey_id, outcome.version)
        target = quote(outcome.journey_id, safe="")
        return RedirectResponse(
            f"{base(request)}/journeys/{target}?did={outcome.did}", status_code=303
        )

    @app.get("/audiences")
    def audiences(request: Request) -> Response:
        return show(
            request,
            "audiences.html.j2",
            "audiences",
            lambda: {"title": "Audiences", "audiences": pages.audiences()},
        )

    @app.get("/audiences/{audience_id}")
    def audience(request: Request, audience_id: str) -> Response:
        return show(
            request,
            "audience.html.j2",
            "audiences",
            lambda: pages.audience(audience_id),
            f"No shipped audience {audience_id!r}.",
        )

    @app.get("/messages")
    def messages(
        request: Request,
        journey: str = "",
        step: str = "",
        channel: str = "",
        status: str = "",
        reason: str = "",
        user: str = "",
        before: int | None = None,
    ) -> Response:
        filters = {
            "journey": journey,
            "step": step,
            "channel": channel,
            "status": status,
            "reason": reason,
            "user": user,
        }
        return show(
            request, "messages.html.j2", "messages", lambda: pages.messages(filters, before)
        )

    @app.get("/rejected")
    def rejected(request: Request, stage: str = "", pending: str = "", did: str = "") -> Response:
        return show(
            request,
            "rejected.html.j2",
            "rejected",
            lambda: pages.rejected(stage=stage, pending=pending == "1", did=did),
        )

    @app.post("/rejected/{rejected_id}/replay")
    async def replay_rejected(request: Request, rejected_id: int) -> Response:
        await checked_form(request)
        outcome = await run_in_threadpool(
            pages.replay, rejected_id, limits=limits_of(settings), now=now()
        )
        log.info("console: rejected event #%s replayed: %s", rejected_id, outcome)
        query = urlencode({"did": f"#{rejected_id}: {outcome}"})
        return RedirectResponse(f"{base(request)}/rejected?{query}", status_code=303)

    @app.get("/users")
    def find_user(request: Request, q: str = "", id: str = "") -> Response:
        """Search by id, email or phone; one match opens that user's page."""
        logged_in(request)
        query = (q or id).strip()
        found = pages.find_users(query) if query else []
        if len(found) == 1:
            target = f"/users/{quote(found[0].id, safe='')}"
            return RedirectResponse(f"{base(request)}{target}", status_code=303)
        page = {"title": "Users", "query": query, "found": found}
        return show(request, "users.html.j2", "", lambda: page)

    @app.get("/users/{user_id:path}")
    def user(request: Request, user_id: str) -> Response:
        return show(
            request, "user.html.j2", "", lambda: pages.user(user_id), f"No user {user_id!r}."
        )

    @app.get("/reports")
    def reports(request: Request) -> Response:
        return show(
            request,
            "reports.html.j2",
            "reports",
            lambda: {"title": "Reports", "reports": pages.reports()},
        )

    kpis = kpi_cache(
        session_factory,
        clock=now,
        timezone=settings.default_timezone,
        targets=settings.kpi_targets,
    )

    @app.get("/growth")
    def growth(request: Request, since: str = "") -> Response:
        return show(
            request,
            "growth.html.j2",
            "growth",
            lambda: growth_page(kpis, now=now(), since=since, timezone=settings.default_timezone),
            f"{since!r} is not a date before today (YYYY-MM-DD).",
        )

    @app.post("/growth/refresh")
    async def growth_refresh(request: Request) -> Response:
        since = (await checked_form(request)).get("since", "")
        try:
            start = window_start(since, now=now(), timezone=settings.default_timezone)
        except ValueError:
            raise StarletteHTTPException(404, f"{since!r} is not a date before today.") from None
        await run_in_threadpool(kpis.get, start, refresh=True)
        query = f"?since={quote(since, safe='')}" if since else ""
        return RedirectResponse(f"{base(request)}/growth{query}", status_code=303)

    @app.get("/reports/{journey_id}")
    def report(request: Request, journey_id: str) -> Response:
        return show(
            request,
            "report.html.j2",
            "reports",
            lambda: pages.report(journey_id),
            f"No journey {journey_id!r} has been published.",
        )

    return app
