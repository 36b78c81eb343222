"""``GET`` and ``POST /u/{token}``: the unsubscribe link in every message.

``GET`` shows a confirmation page and changes nothing, so a mail scanner that follows links
unsubscribes nobody. ``POST`` unsubscribes at once: the page's button, and mail clients doing
RFC 8058 one-click (body ``List-Unsubscribe=One-Click``). A tampered or expired token answers
400 and changes nothing.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep, SessionDep
from api.unsubscribe_pages import confirm_page, done_page, error_page
from message_templates.unsubscribe_links import BadUnsubscribeToken
from triggers.unsubscribe import unsubscribe

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/u/{token}", response_class=HTMLResponse)
async def confirm(token: str, services: ServicesDep) -> HTMLResponse:
    try:
        claim = services.unsubscribe_links.read(token, now=services.clock())
    except BadUnsubscribeToken as exc:
        return error_page(exc.reason)
    return confirm_page(claim)


@router.post("/u/{token}", response_class=HTMLResponse)
async def one_click(token: str, services: ServicesDep, session: SessionDep) -> HTMLResponse:
    # The body (List-Unsubscribe=One-Click) is not required: the token is the authority,
    # and mail clients differ in how they encode it.
    at = services.clock()
    try:
        claim = services.unsubscribe_links.read(token, now=at)
    except BadUnsubscribeToken as exc:
        log.info("unsubscribe link refused: %s", exc.reason)
        return error_page(exc.reason)

    def change() -> None:
        with session.begin():
            unsubscribe(session, claim=claim, at=at)

    await run_in_threadpool(change)
    return done_page(claim)
