"""What the routes are given, as FastAPI dependencies: the settings, a database session, the
clock, the services the app was built with, and who is calling.

:func:`api.app.create_app` builds one :class:`Services` per app and keeps it on
``app.state``; a route asks for what it needs by type (``session: SessionDep``,
``settings: SettingsDep``) and names its caller with ``dependencies=[WriteKey]`` or
``[AdminToken]``. None of these declares a parameter, so the OpenAPI document shows only what
the routes themselves read.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from config import Settings
from message_templates.unsubscribe_links import UnsubscribeLinks
from store.clock import Clock
from store.db import SessionFactory
from triggers.ingest import Ingestor, RunEnder
from triggers.segment import Limits


@dataclass(frozen=True)
class Services:
    """Everything the routes share, built once per app from settings and the caller's parts.

    ``runs`` ends Temporal runs (None when the router cannot); ``twilio`` and ``sendgrid``
    check the providers' signatures (None when their secret is not configured).
    """

    settings: Settings
    session_factory: SessionFactory
    clock: Clock
    ingestor: Ingestor
    limits: Limits
    runs: RunEnder | None
    unsubscribe_links: UnsubscribeLinks
    twilio: RequestValidator | None
    sendgrid: EventWebhook | None


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_clock(services: ServicesDep) -> Clock:
    return services.clock


def get_session(services: ServicesDep) -> Iterator[Session]:
    """A session for this request; the route owns its transactions (``session.begin()``)."""
    with services.session_factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[Session, Depends(get_session)]


# --- who is calling ----------------------------------------------------------------------------


def check_write_key(authorization: str | None, write_key: str) -> str | None:
    """Why ``authorization`` does not carry ``write_key`` as its Basic user name, or None.

    Segment's libraries send ``Basic base64("<write key>:")``; the password is not checked.
    """
    if not authorization:
        return "Missing HTTP Basic credentials: send the write key as the user name."
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return "Authorization must be HTTP Basic with the write key as the user name."
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "Authorization is not valid base64."
    user, _, _password = decoded.partition(b":")
    if not hmac.compare_digest(user, write_key.encode()):
        return "Invalid write key."
    return None


def is_admin(authorization: str | None, admin_token: str) -> bool:
    """Whether ``authorization`` is ``Bearer <admin token>``."""
    scheme, _, token = (authorization or "").partition(" ")
    expected = admin_token.encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


async def require_write_key(request: Request, settings: SettingsDep) -> None:
    """The platform's calls: HTTP Basic with the write key as user name, else 401."""
    reason = check_write_key(request.headers.get("authorization"), settings.write_key)
    if reason:
        raise HTTPException(401, reason, headers={"WWW-Authenticate": 'Basic realm="lifecycle"'})


async def require_admin(request: Request, settings: SettingsDep) -> None:
    """The operator's calls: ``Bearer <admin token>``, else 401. The write key is not enough:
    it ships inside apps and web pages, where anyone can read it."""
    if not is_admin(request.headers.get("authorization"), settings.admin_token):
        raise HTTPException(401, "admin token required (Bearer)")


WriteKey = Depends(require_write_key)
AdminToken = Depends(require_admin)
