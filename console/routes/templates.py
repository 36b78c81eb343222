"""The templates: the list, one template's preview (for the sample or a real user) and its
test send, a POST form carrying the session's CSRF token."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import compose
from console.deps import Console, ConsoleDep, base
from console.template_sends import (
    SendTestRefused,
    TemplateWorkbench,
    allowed_addresses,
)
from message_templates.errors import TemplateError, UnknownTemplateError
from message_templates.preview import summarize
from message_templates.sample import sample_context
from store.db import SessionFactory

log = logging.getLogger(__name__)

router = APIRouter()


def _workbench(console: Console, request: Request) -> TemplateWorkbench:
    """Built per request: template files edited on disk show at the next page load."""
    settings = console.settings
    factory: SessionFactory = request.app.state.sessions
    return TemplateWorkbench(
        factory,
        compose.renderer(settings),
        allowlist=settings.test_send_allowlist,
        channels=lambda: compose.channels(settings, factory),
        now=console.now,
        default_timezone=settings.default_timezone,
    )


@router.get("/templates")
def templates(request: Request, console: ConsoleDep) -> Response:
    def load() -> dict[str, Any]:
        workbench = _workbench(console, request)
        names = workbench.templates.names()
        return {
            "title": "Templates",
            "templates": [summarize(workbench.templates, n) for n in names],
        }

    return console.show(request, "templates.html.j2", "templates", load)


def _page(
    console: Console,
    request: Request,
    name: str,
    *,
    user: str,
    sent: int | None = None,
    refused: str = "",
) -> dict[str, Any] | None:
    """What the template page shows, or None when there is no such template."""
    workbench = _workbench(console, request)
    if name not in workbench.templates.names():
        return None
    user = user.strip()
    context = workbench.context(user or None)
    shown = context if context is not None else workbench.context(None)
    assert shown is not None  # the sample is always there
    preview = workbench.preview(name, shown)
    channel = preview.summary.channel
    return {
        "title": name,
        "name": name,
        "user": user,
        "no_such_user": context is None,
        "context": shown,
        # A user without a coupon of their own is shown with the sample's.
        "sample_coupon": context is not None
        and bool(user)
        and context["coupon"] == sample_context()["coupon"],
        "preview": preview,
        "addresses": allowed_addresses(workbench.allowlist, channel) if channel else [],
        "allowlist_set": bool(workbench.allowlist),
        "outcome": workbench.outcome(sent) if sent is not None else None,
        "refused": refused,
    }


@router.get("/templates/{name}")
def template(
    request: Request, console: ConsoleDep, name: str, user: str = "", sent: int | None = None
) -> Response:
    return console.show(
        request,
        "template.html.j2",
        "templates",
        lambda: _page(console, request, name, user=user, sent=sent),
        f"No template {name!r}.",
    )


@router.post("/templates/{name}/send-test")
async def send_test(request: Request, console: ConsoleDep, name: str) -> Response:
    fields = await console.checked_form(request)
    user = fields.get("user", "").strip()
    workbench = _workbench(console, request)

    def send() -> int:
        context = workbench.context(user or None)
        if context is None:
            raise SendTestRefused(f"no user {user!r}")
        outcome = workbench.send_test(
            name, context=context, locale=fields.get("locale") or None, to=fields.get("to", "")
        )
        return outcome.message_id

    try:
        sent = await run_in_threadpool(send)
    except UnknownTemplateError:
        raise StarletteHTTPException(404, f"No template {name!r}.") from None
    except (SendTestRefused, TemplateError) as exc:
        log.info("console: test send of %s refused: %s", name, exc)
        page = await run_in_threadpool(_page, console, request, name, user=user, refused=str(exc))
        return console.html(
            request,
            "template.html.j2",
            session=console.session_of(request),
            status_code=400,
            section="templates",
            **(page or {}),
        )
    log.info("console: test send of %s recorded as message %s", name, sent)
    query = urlencode({k: v for k, v in (("user", user), ("sent", str(sent))) if v})
    return RedirectResponse(
        f"{base(request)}/templates/{quote(name, safe='')}?{query}", status_code=303
    )
