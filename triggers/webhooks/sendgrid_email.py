"""SendGrid's Event Webhook, applied: what happened to each email after SendGrid accepted it.

SendGrid posts a JSON array of events, signed with ECDSA (P-256, SHA-256) over the
``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body; the signature
(base64 DER) is in ``X-Twilio-Email-Event-Webhook-Signature``. A request whose signature does
not verify under ``settings.sendgrid_webhook_public_key``, or whose timestamp is more than
five minutes away from now, answers 403. Each event is applied once (by ``sg_event_id``):

- ``delivered`` / ``open`` / ``click`` move the ledger row forward;
- ``bounce`` marks it ``bounced``, ``dropped`` marks it ``failed``, with the reason; a hard
  bounce (``type: bounce``, not ``blocked``) unsubscribes the address from all email;
- ``spamreport`` / ``unsubscribe`` / ``group_unsubscribe`` unsubscribe it from marketing
  email, ``group_resubscribe`` subscribes it again.

Consent changes are dated by the event's ``timestamp``: one older than the consent stored
(say, a resubscribe from yesterday reported after today's unsubscribe click) changes nothing.

The row is found by our key in the custom args (``lifecycle_key``), else by the message id
SendGrid gave at send time (``sg_message_id`` up to its first dot).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy.orm import Session

from channels.sendgrid_email import MESSAGE_KEY_ARG
from observability.metrics import metrics
from store.rejected import Rejection, add_rejections
from store.webhooks import (
    TOPICS,
    LedgerRef,
    advance_status,
    find_message,
    record_provider_event,
    set_consent,
    users_with_email,
)
from triggers.segment import raw_json, shape_problem

log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_AGE = timedelta(minutes=5)
MAX_BODY_BYTES = 8 * 1024 * 1024

PROGRESS_EVENTS = {"delivered": "delivered", "open": "opened", "click": "clicked"}
# event → (consent status, source) for marketing email.
CONSENT_EVENTS = {
    "spamreport": ("unsubscribed", "spamreport"),
    "unsubscribe": ("unsubscribed", "sendgrid_unsubscribe"),
    "group_unsubscribe": ("unsubscribed", "sendgrid_group_unsubscribe"),
    "group_resubscribe": ("subscribed", "sendgrid_group_resubscribe"),
}


def load_verification_key(text: str) -> EventWebhook:
    """SendGrid's verifier for the key as SendGrid shows it (base64) or as PEM.

    Raises:
        ValueError: the text is not an EC public key.
    """
    body = "".join(
        line.strip() for line in text.strip().splitlines() if not line.startswith("-----")
    )
    try:
        return EventWebhook(public_key=body)
    except ValueError as exc:
        raise ValueError(
            "LIFECYCLE_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key "
            f"({type(exc).__name__})"
        ) from None


def signature_problem(
    verifier: EventWebhook | None,
    *,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
) -> str | None:
    """Why this request is not a fresh one SendGrid signed, or None if it is."""
    if verifier is None:
        return "SendGrid event webhooks are not configured."
    if not signature or not timestamp:
        return "Missing the SendGrid signature or timestamp header."
    try:
        signed_at = datetime.fromtimestamp(int(timestamp.strip()), UTC)
    except (ValueError, OverflowError, OSError):
        return "Invalid SendGrid timestamp."
    if abs(now - signed_at) > MAX_AGE:
        return "Stale SendGrid timestamp."
    try:
        valid = verifier.verify_signature(body.decode("utf-8"), signature.strip(), timestamp)
    except (ValueError, TypeError):  # not base64, not UTF-8, not a DER signature
        valid = False
    return None if valid else "Invalid SendGrid signature."


def _event_time(event: dict[str, Any], default: datetime) -> datetime:
    stamp = event.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            return datetime.fromtimestamp(stamp, UTC)
        except (ValueError, OverflowError, OSError):
            return default
    return default


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def apply_events(
    session: Session, events: list[dict[str, Any]], *, received_at: datetime
) -> Counter[str]:
    """Apply a batch of events in one transaction; counts what happened to each.

    One event never costs the others (SendGrid retries the whole batch, so a poisoned event
    would fail it forever): an event the database could not store, or whose handling fails,
    is rolled back alone and kept in the dead-letter table with the reason.
    """
    outcomes: Counter[str] = Counter()
    refused: list[Rejection] = []
    for index, event in enumerate(sorted(events, key=lambda e: _event_time(e, received_at))):
        problem = shape_problem(event, f"[{index}]")
        if problem is not None:
            path, why = problem
            refused.append(_rejection(event, f"{path} {why}.", path))
            outcomes["refused"] += 1
            continue
        try:
            with session.begin_nested():
                outcomes[_apply(session, event, received_at=received_at)] += 1
        except Exception as exc:  # one event's failure is kept aside, never the batch's
            log.exception("sendgrid event %r could not be applied", event.get("sg_event_id"))
            refused.append(_rejection(event, f"{type(exc).__name__}: {str(exc)[:500]}", None))
            outcomes["refused"] += 1
    add_rejections(session, rows=refused, at=received_at)
    metrics().events_rejected("ingest", len(refused))
    return outcomes


def _rejection(event: dict[str, Any], reason: str, field: str | None) -> Rejection:
    event_id = event.get("sg_event_id")
    return Rejection(
        stage="ingest",
        source="/webhooks/sendgrid",
        reason=reason,
        raw=raw_json(event),
        message_id=event_id
        if isinstance(event_id, str)
        and shape_problem(event_id, "") is None
        and len(event_id) <= 255
        else None,
        field=field,
    )


def _apply(session: Session, event: dict[str, Any], *, received_at: datetime) -> str:
    kind = event.get("event")
    if not isinstance(kind, str):
        return "ignored"
    at = _event_time(event, received_at)
    key = event.get(MESSAGE_KEY_ARG)
    sg_message_id = event.get("sg_message_id")
    ref = find_message(
        session,
        provider=PROVIDER,
        idempotency_key=key if isinstance(key, str) else None,
        provider_message_id=sg_message_id.split(".", 1)[0]
        if isinstance(sg_message_id, str)
        else None,
    )
    event_id = event.get("sg_event_id")
    if isinstance(event_id, str) and event_id:
        if not record_provider_event(
            session,
            provider=PROVIDER,
            provider_event_id=event_id,
            kind=kind,
            message_id=ref.id if ref else None,
            occurred_at=at,
            received_at=received_at,
        ):
            return "duplicate"

    if kind in PROGRESS_EVENTS:
        if kind == "open" and event.get("sg_machine_open") is True:
            return "machine_open"  # a mail proxy fetched the pixel; no person opened it
        if ref is None:
            return "unknown_message"
        moved = advance_status(session, message_id=ref.id, status=PROGRESS_EVENTS[kind], at=at)
        return kind if moved else "unchanged"

    # Consent is ordered by event time: a timestamp ahead of our clock must not date a fact
    # past the ones that will follow it (an unsubscribe click a second later).
    consent_at = min(at, received_at)
    if kind in ("bounce", "dropped"):
        hard = kind == "bounce" and event.get("type", "bounce") == "bounce"
        if ref is not None:
            if kind == "bounce":
                status, reason = "bounced", "hard_bounce" if hard else "blocked"
            else:
                status, reason = "failed", _slug(f"dropped {event.get('reason') or ''}")
            advance_status(session, message_id=ref.id, status=status, at=at, reason=reason)
        if hard:
            _consent(
                session,
                event,
                ref,
                at=consent_at,
                status="unsubscribed",
                source="bounce",
                topics=TOPICS,
            )
        return kind

    if kind in CONSENT_EVENTS:
        status, source = CONSENT_EVENTS[kind]
        _consent(
            session, event, ref, at=consent_at, status=status, source=source, topics=("marketing",)
        )
        return kind
    return "ignored"  # processed, deferred, ...


def _consent(
    session: Session,
    event: dict[str, Any],
    ref: LedgerRef | None,
    *,
    at: datetime,
    status: str,
    source: str,
    topics: tuple[str, ...],
) -> None:
    if ref is not None and ref.user_id:
        user_ids = [ref.user_id]
    else:
        email = event.get("email")
        user_ids = users_with_email(session, email=email) if isinstance(email, str) else []
    set_consent(
        session,
        user_ids=user_ids,
        channel="email",
        topics=topics,
        status=status,
        source=source,
        at=at,
    )
