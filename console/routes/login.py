"""Logging in with the admin token (throttled per client address) and out."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.auth import COOKIE, SESSION_LIFETIME
from console.deps import Console, ConsoleDep, base, read_form

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse(f"{base(request)}/journeys", status_code=303)


@router.get("/login")
async def login_form(request: Request, console: ConsoleDep) -> Response:
    if console.session_of(request) is not None:
        return RedirectResponse(f"{base(request)}/journeys", status_code=303)
    return console.html(request, "login.html.j2", session=None, title="Log in", error=None)


def _refused(console: Console, request: Request, status_code: int, error: str) -> HTMLResponse:
    return console.html(
        request,
        "login.html.j2",
        session=None,
        status_code=status_code,
        title="Log in",
        error=error,
    )


def _too_many(console: Console, request: Request, wait: int) -> HTMLResponse:
    error = f"Too many wrong tokens from your address: try again in {wait} s."
    answer = _refused(console, request, 429, error)
    answer.headers["Retry-After"] = str(wait)
    return answer


@router.post("/login")
async def login(request: Request, console: ConsoleDep) -> Response:
    address = request.client.host if request.client else "unknown"
    wait = console.throttle.retry_after(address)
    if wait:
        return _too_many(console, request, wait)
    fields = await read_form(request)
    if not console.signer.token_ok(fields.get("token", "")):
        wait = console.throttle.failed(address)
        log.warning(
            "console: a login with a wrong admin token was refused (%s)",
            f"next attempt in {wait} s" if wait else "not throttled yet",
        )
        if wait:
            return _too_many(console, request, wait)
        return _refused(console, request, 401, "That is not the admin token.")
    console.throttle.succeeded(address)
    cookie, _ = console.signer.new_cookie(now=console.now())
    response = RedirectResponse(f"{base(request)}/journeys", status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=base(request) or "/",
        httponly=True,
        samesite="strict",
        # Behind a TLS-terminating proxy the request is plain HTTP; the public URL is not.
        secure=request.url.scheme == "https"
        or console.settings.public_base_url.startswith("https://"),
    )
    return response


@router.post("/logout")
async def logout(request: Request, console: ConsoleDep) -> Response:
    await console.checked_form(request)
    response = RedirectResponse(f"{base(request)}/login", status_code=303)
    response.delete_cookie(COOKIE, path=base(request) or "/")
    return response
