"""The journey builder at ``/journeys/{id}/builder``: the journey's settings and steps as
forms (add, edit, move and delete steps), its problems beside their fields and its diagram
redrawn on every change; "Save as draft" keeps the YAML as the journey's draft, which the
draft page compares with live and publishes. ``/journeys/new?id=...`` opens it on a journey
that does not exist yet: nothing is stored until its draft is saved.

No script: each button posts the whole form (with the session's CSRF token and the YAML the
page was drawn from) and the page comes back with the change made.
"""

from __future__ import annotations

import logging
from functools import cached_property, partial
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.builder_page import Builder, normalised
from console.deps import Console, ConsoleDep, base
from console.routes.versions import DraftsDep
from journeys.models import SLUG
from journeys.yaml_form import FormError
from journeys.yaml_write import dump_journey
from message_templates.render import TemplateRenderer

log = logging.getLogger(__name__)

router = APIRouter()

SAVED = "Draft saved. Nothing changed for users: publish it from the draft page."


class _Templates:
    """The template catalogue the builder checks sends against, read on first use."""

    @cached_property
    def renderer(self) -> TemplateRenderer:
        return TemplateRenderer()


def _builder(request: Request, journey_id: str) -> Builder:
    state = request.app.state
    templates: _Templates | None = getattr(state, "builder_templates", None)
    if templates is None:
        templates = state.builder_templates = _Templates()
    return Builder(journey_id, templates.renderer)


def _show(
    console: Console,
    request: Request,
    page: dict[str, object],
    *,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    return console.html(
        request,
        "journey_builder.html.j2",
        session=console.logged_in(request),
        status_code=status_code,
        section="journeys",
        notice=notice,
        **page,
    )


@router.get("/journeys/new")
async def new_journey(
    request: Request,
    console: ConsoleDep,
    drafts: DraftsDep,
    journey_id: str = Query("", alias="id"),
) -> Response:
    """The builder on a journey of that id with nothing in it yet."""
    console.logged_in(request)
    journey_id = journey_id.strip()
    if not SLUG.match(journey_id) or journey_id == "new":
        raise StarletteHTTPException(
            400, "A journey id is lower-case letters, digits and '_', e.g. welcome_sms."
        )
    if await run_in_threadpool(drafts.editing, journey_id) is not None:
        raise StarletteHTTPException(
            400, f"A journey {journey_id!r} exists already: open it from the journeys list."
        )
    name = journey_id.replace("_", " ").capitalize()
    text = dump_journey({"id": journey_id, "name": name, "steps": []})
    page = await run_in_threadpool(_builder(request, journey_id).page, text)
    return _show(console, request, page)


@router.get("/journeys/{journey_id}/builder")
async def builder(
    request: Request, console: ConsoleDep, drafts: DraftsDep, journey_id: str, did: str = ""
) -> Response:
    console.logged_in(request)
    editing = await run_in_threadpool(drafts.editing, journey_id)
    if editing is None:
        raise StarletteHTTPException(
            404, f"No journey {journey_id!r} is drafted, published or shipped."
        )
    text = normalised(editing[0])
    if text is None:
        raise StarletteHTTPException(
            400,
            f"The draft of {journey_id} is not a YAML mapping the builder can show: "
            "fix it on the draft page.",
        )
    page = await run_in_threadpool(_builder(request, journey_id).page, text)
    return _show(console, request, page, notice=SAVED if did == "saved" else "")


@router.post("/journeys/{journey_id}/builder")
async def posted(
    request: Request, console: ConsoleDep, drafts: DraftsDep, journey_id: str
) -> Response:
    fields = await console.checked_form(request)
    made = _builder(request, journey_id)
    try:
        text, opened = made.posted(fields)
    except FormError as exc:
        before = normalised(fields.get("yaml", "")) or ""
        page = await run_in_threadpool(partial(made.page, before, posted=fields, form_error=exc))
        return _show(console, request, page, status_code=400)
    except ValueError as exc:
        raise StarletteHTTPException(400, str(exc)) from None
    if fields.get("action") == "save":
        await run_in_threadpool(drafts.save, journey_id, text)
        log.info("console: draft of %s saved from the builder", journey_id)
        url = f"{base(request)}/journeys/{quote(journey_id, safe='')}/builder?did=saved"
        return RedirectResponse(url, status_code=303)
    page = await run_in_threadpool(partial(made.page, text, opened=opened))
    return _show(console, request, page)
