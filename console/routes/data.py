"""The data pages: the message ledger, rejected events (and their replay), users,
reports and the growth KPIs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.deps import ConsoleDep, base
from console.growth import growth_page, window_start
from console.queries import UnknownCursor
from triggers.segment import limits_of

log = logging.getLogger(__name__)

router = APIRouter()


def _listing(
    request: Request, console: ConsoleDep, name: str, title: str, rows: Callable[[], Any]
) -> Response:
    """A page listing ``rows()``: ``name`` is its template, its section and the rows' key."""
    return console.show(request, f"{name}.html.j2", name, lambda: {"title": title, name: rows()})


@router.get("/messages")
def messages(
    request: Request,
    console: ConsoleDep,
    journey: str = "",
    step: str = "",
    channel: str = "",
    status: str = "",
    reason: str = "",
    user: str = "",
    before: int | None = None,
    from_: Annotated[str, Query(alias="from")] = "",
    to: str = "",
) -> Response:
    filters = {
        "journey": journey,
        "step": step,
        "channel": channel,
        "status": status,
        "reason": reason,
        "user": user,
    }
    days = {"from": from_, "to": to}

    def load() -> dict[str, Any] | None:
        try:
            return console.pages.messages(filters, before, days=days)
        except UnknownCursor:
            raise StarletteHTTPException(
                400, f"No message #{before} to page from: open the first page again."
            ) from None

    return console.show(
        request, "messages.html.j2", "messages", load, "from and to are days, YYYY-MM-DD."
    )


@router.get("/rejected")
def rejected(
    request: Request, console: ConsoleDep, stage: str = "", pending: str = "", did: str = ""
) -> Response:
    return console.show(
        request,
        "rejected.html.j2",
        "rejected",
        lambda: console.pages.rejected(stage=stage, pending=pending == "1", did=did),
    )


@router.post("/rejected/{rejected_id}/replay")
async def replay_rejected(request: Request, console: ConsoleDep, rejected_id: int) -> Response:
    await console.checked_form(request)
    outcome = await run_in_threadpool(
        console.pages.replay, rejected_id, limits=limits_of(console.settings), now=console.now()
    )
    log.info("console: rejected event #%s replayed: %s", rejected_id, outcome)
    query = urlencode({"did": f"#{rejected_id}: {outcome}"})
    return RedirectResponse(f"{base(request)}/rejected?{query}", status_code=303)


@router.get("/users")
def find_user(request: Request, console: ConsoleDep, q: str = "", id: str = "") -> Response:
    """Search by id, email or phone; one match opens that user's page."""
    console.logged_in(request)
    query = (q or id).strip()
    found = console.pages.find_users(query) if query else []
    if len(found) == 1:
        target = f"/users/{quote(found[0].id, safe='')}"
        return RedirectResponse(f"{base(request)}{target}", status_code=303)
    page = {"title": "Users", "query": query, "found": found}
    return console.show(request, "users.html.j2", "", lambda: page)


@router.get("/users/{user_id:path}")
def user(request: Request, console: ConsoleDep, user_id: str) -> Response:
    return console.show(
        request, "user.html.j2", "", lambda: console.pages.user(user_id), f"No user {user_id!r}."
    )


@router.get("/reports")
def reports(request: Request, console: ConsoleDep) -> Response:
    return _listing(request, console, "reports", "Reports", console.pages.reports)


@router.get("/growth")
def growth(request: Request, console: ConsoleDep, since: str = "") -> Response:
    timezone = console.settings.default_timezone
    return console.show(
        request,
        "growth.html.j2",
        "growth",
        lambda: growth_page(console.kpis, now=console.now(), since=since, timezone=timezone),
        f"{since!r} is not a date before today (YYYY-MM-DD).",
    )


@router.post("/growth/refresh")
async def growth_refresh(request: Request, console: ConsoleDep) -> Response:
    since = (await console.checked_form(request)).get("since", "")
    try:
        start = window_start(since, now=console.now(), timezone=console.settings.default_timezone)
    except ValueError:
        raise StarletteHTTPException(404, f"{since!r} is not a date before today.") from None
    await run_in_threadpool(console.kpis.get, start, refresh=True)
    query = f"?since={quote(since, safe='')}" if since else ""
    return RedirectResponse(f"{base(request)}/growth{query}", status_code=303)


@router.get("/reports/{journey_id}")
def report(request: Request, console: ConsoleDep, journey_id: str, since: str = "") -> Response:
    return console.show(
        request,
        "report.html.j2",
        "reports",
        lambda: console.pages.report(journey_id, since=since),
        f"{since!r} is not a day (YYYY-MM-DD)."
        if since and not _is_day(since)
        else f"No journey {journey_id!r} has been published.",
    )


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True
