"""What the console's routes are given: one :class:`Console` per app (settings, clock,
session signer, login throttle, page loaders, templates, the KPI cache, the Temporal
client), kept on
``app.state`` and asked for as ``console: ConsoleDep``, with the helpers every page shares
(render, require a login, read a form and check its CSRF token)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException as StarletteHTTPException

from config import Settings
from console.auth import COOKIE, ConsoleSession, LoginThrottle, SessionSigner, csrf_ok
from console.growth import KpiCache
from console.pages import ConsolePages
from devstack.views import _pct, _span
from store.reports import DEFERRAL_REASONS

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 256 * 1024


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


class Redirect(Exception):
    """Answer with a redirect to ``url`` (303), from wherever a page finds it must."""

    def __init__(self, url: str):
        self.url = url


def base(request: Request) -> str:
    """The path the console is mounted at (``/console``), without a trailing slash."""
    return str(request.scope.get("root_path", "")).rstrip("/")


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the last value of each); 413 past ``MAX_FORM_BYTES``."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise StarletteHTTPException(413, "The form is too large.")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


class ConnectOnce:
    """A Temporal client made when first asked for, then kept: the console starts (and its
    reading pages work) while Temporal is still coming up or away."""

    def __init__(self, connect: Callable[[], Awaitable[Client]]):
        self._connect = connect
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._connect()
        return self._client


@dataclass(frozen=True)
class Console:
    """Everything the console's routes share, built once per app."""

    settings: Settings
    now: Callable[[], datetime]
    signer: SessionSigner
    throttle: LoginThrottle
    pages: ConsolePages
    env: Environment
    kpis: KpiCache
    # The Temporal client, connected on first need (broadcasts start and are steered by it).
    temporal: Callable[[], Awaitable[Client]] | None = None

    def session_of(self, request: Request) -> ConsoleSession | None:
        """The request's console session, if it has a valid one."""
        return self.signer.read(request.cookies.get(COOKIE), now=self.now())

    def html(
        self,
        request: Request,
        template: str,
        *,
        session: ConsoleSession | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        body = self.env.get_template(template).render(
            base=base(request), csrf=session.csrf if session else "", **context
        )
        return HTMLResponse(body, status_code=status_code)

    def logged_in(self, request: Request) -> ConsoleSession:
        """The request's session; without one, the answer is the login page."""
        session = self.session_of(request)
        if session is None:
            raise Redirect(f"{base(request)}/login")
        return session

    async def checked_form(self, request: Request) -> dict[str, str]:
        """The fields of a state-changing form from a logged-in session with its CSRF token."""
        session = self.logged_in(request)
        fields = await read_form(request)
        if not csrf_ok(session, fields.get("csrf")):
            log.warning("console: refused %s (CSRF token missing or wrong)", request.url.path)
            raise StarletteHTTPException(
                403, "This form is stale or did not come from the console: reload and retry."
            )
        return fields

    def show(
        self,
        request: Request,
        template: str,
        section: str,
        load: Callable[[], dict[str, Any] | None],
        missing: str = "",
        **extra: Any,
    ) -> Response:
        """A page for a logged-in session; 404 with ``missing`` when ``load`` finds nothing."""
        session = self.logged_in(request)
        page = load()
        if page is None:
            raise StarletteHTTPException(404, missing)
        return self.html(request, template, session=session, section=section, **extra, **page)


async def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]
