"""Provider webhooks: delivery facts and replies coming back from Twilio and SendGrid.

``POST /webhooks/twilio/status`` and ``/webhooks/twilio/inbound`` (signed with
``X-Twilio-Signature``), ``POST /webhooks/sendgrid`` (the Event Webhook, signed with ECDSA).
Unsigned or wrongly signed requests answer 403 and change nothing.
"""

from __future__ import annotations

from fastapi import APIRouter

from config import Settings
from store.db import SessionFactory
from triggers.ingest import Clock, utc_now
from triggers.webhooks.sendgrid_email import sendgrid_router
from triggers.webhooks.twilio_sms import twilio_router


def webhook_router(
    settings: Settings, *, session_factory: SessionFactory, clock: Clock | None = None
) -> APIRouter:
    """Every provider webhook, on one router.

    Args:
        settings: the Twilio auth token, the SendGrid verification key and the public base
            URL the providers call.
        session_factory: each request's changes commit in one transaction from this factory.
        clock: receipt time (and the SendGrid timestamp check); defaults to the UTC wall clock.
    """
    now = clock or utc_now
    router = APIRouter()
    router.include_router(twilio_router(settings, session_factory=session_factory, clock=now))
    router.include_router(sendgrid_router(settings, session_factory=session_factory, clock=now))
    return router


__all__ = ["webhook_router"]
