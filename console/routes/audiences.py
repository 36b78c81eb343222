"""The audiences: the list (shipped and saved), one audience's page (a sample of members and
why each matched; a saved one's versions), and the builder at ``/audiences/new`` and
``/audiences/{name}/edit``.

The builder is a plain form: every button posts it (with the session's CSRF token) and the
page comes back with the rows as edited, the rule as YAML, and the member count with a
sample, so it works without script.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from audiences.builder import KINDS, Row, build, rows_from_form
from audiences.rules import AudienceError
from audiences.saved import rule_yaml
from console.audience_pages import AudiencePages
from console.deps import Console, ConsoleDep, base

log = logging.getLogger(__name__)

router = APIRouter()


def _notice(did: str) -> str:
    """What the audience page says after a save (``did=saved-v3``)."""
    version = did.removeprefix("saved-v")
    if version == did or not version.isdigit():
        return ""
    return f"Saved as version {version}: journeys and broadcasts naming this audience use it now."


def get_audience_pages(request: Request, console: ConsoleDep) -> AudiencePages:
    """The audience pages on the app's sessions and the console's clock."""
    return AudiencePages(request.app.state.sessions, now=console.now)


PagesDep = Annotated[AudiencePages, Depends(get_audience_pages)]


@router.get("/audiences")
def audiences(request: Request, console: ConsoleDep, pages: PagesDep) -> Response:
    return console.show(request, "audiences.html.j2", "audiences", pages.listing)


@router.get("/audiences/new")
def new(request: Request, console: ConsoleDep, pages: PagesDep) -> Response:
    return _builder(request, console, pages, "all", [], name="", editing="")


@router.post("/audiences/new")
async def new_posted(request: Request, console: ConsoleDep, pages: PagesDep) -> Response:
    return await _posted(request, console, pages, editing="")


@router.get("/audiences/{name}")
def audience(
    request: Request, console: ConsoleDep, pages: PagesDep, name: str, did: str = ""
) -> Response:
    return console.show(
        request,
        "audience.html.j2",
        "audiences",
        lambda: pages.audience(name),
        f"No audience {name!r}, shipped or saved.",
        notice=_notice(did),
    )


@router.get("/audiences/{name}/edit")
def edit(request: Request, console: ConsoleDep, pages: PagesDep, name: str) -> Response:
    console.logged_in(request)
    try:
        found = pages.editable(name)
    except AudienceError as exc:
        raise StarletteHTTPException(404, exc.message) from None
    if found is None:
        raise StarletteHTTPException(404, f"No audience {name!r}, shipped or saved.")
    combine, rows, saved_name = found
    return _builder(request, console, pages, combine, rows, name=saved_name, editing=saved_name)


@router.post("/audiences/{name}/edit")
async def edit_posted(
    request: Request, console: ConsoleDep, pages: PagesDep, name: str
) -> Response:
    return await _posted(request, console, pages, editing=name)


async def _posted(
    request: Request, console: Console, pages: AudiencePages, *, editing: str
) -> Response:
    """One press of a builder button: add or remove a row, show the count, or save."""
    fields = await console.checked_form(request)
    combine, rows = rows_from_form(fields)
    action = fields.get("action", "count")
    if action == "add" and fields.get("add_kind") in KINDS:
        rows.append(Row.new(fields["add_kind"]))
    elif action.startswith("remove:") and action[7:].isdigit() and int(action[7:]) < len(rows):
        del rows[int(action[7:])]
    name = editing or fields.get("name", "").strip()

    def again(status: int = 200, name_error: str = "") -> Awaitable[Response]:
        """The builder as posted (counted in a worker thread: it queries the database)."""
        return run_in_threadpool(
            _builder,
            request,
            console,
            pages,
            combine,
            rows,
            name=name,
            editing=editing,
            status=status,
            name_error=name_error,
        )

    if action != "save":
        return await again()
    built = build(combine, rows)
    if built.rule is None:
        return await again(400)
    try:
        saved = await run_in_threadpool(
            pages.save,
            name=name,
            source=rule_yaml(built.data),
            saved_by=fields.get("by", "").strip()[:128] or "console",
            note=fields.get("note", "").strip(),
        )
    except AudienceError as exc:
        return await again(400, exc.message)
    log.info("console: audience %s saved as version %s", saved.name, saved.version)
    target = quote(saved.name, safe="")
    return RedirectResponse(
        f"{base(request)}/audiences/{target}?did=saved-v{saved.version}", status_code=303
    )


def _builder(
    request: Request,
    console: Console,
    pages: AudiencePages,
    combine: str,
    rows: list[Row],
    *,
    name: str,
    editing: str,
    status: int = 200,
    name_error: str = "",
) -> Response:
    session = console.logged_in(request)
    page = pages.builder(combine, rows)
    action = f"/audiences/{quote(editing, safe='')}/edit" if editing else "/audiences/new"
    title = f"Edit audience {editing}" if editing else "New audience"
    return console.html(
        request,
        "audience_builder.html.j2",
        session=session,
        status_code=status,
        section="audiences",
        title=title,
        action=action,
        name=name,
        editing=editing,
        name_error=name_error,
        **page,
    )
