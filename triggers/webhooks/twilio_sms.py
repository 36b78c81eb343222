"""Twilio's webhooks: SMS status callbacks and inbound messages (opt-out keywords).

Twilio signs every request: ``X-Twilio-Signature`` is HMAC-SHA1 under the account's auth
token over the URL it called and the form parameters. That URL is ours as the public sees it
(``settings.public_base_url`` + path), not the one this process was reached at behind a proxy.
Both endpoints answer empty TwiML, so Twilio sends no reply of its own making.

An inbound keyword changes consent as of the time it was received (Twilio's request carries
no time of its own); a consent change stored with a later time is left as it is.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from config import Settings
from observability.metrics import metrics
from store.db import SessionFactory, transaction
from store.rejected import Rejection, add_rejections
from store.webhooks import (
    advance_status,
    apply_held_statuses,
    find_message,
    hold_status,
    record_provider_event,
    set_consent,
    users_with_phone,
)
from triggers.body import read_limited
from triggers.ingest import Clock
from triggers.profiles import normalize_phone
from triggers.segment import PayloadError, raw_json, shape_problem

log = logging.getLogger(__name__)

PROVIDER = "twilio"
MAX_FORM_BYTES = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
KEYWORD_SOURCE = "sms_keyword"

# Twilio's standard opt-out and opt-in keywords (Twilio itself honours them on its side: a
# number that replied YES can be messaged again, so ours must agree), plus the mainland
# replies: our own opt-out text says "回T退订" (reply T to unsubscribe).
STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
    | {"退订", "td", "t"}
)
START_WORDS = frozenset({"start", "yes", "unstop"})

# Twilio MessageStatus → ledger status; the others (queued, sending, accepted, ...) say
# nothing the ledger does not know already.
STATUSES = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "opened",
    "undelivered": "undelivered",
    "failed": "failed",
}
# Error codes of failed and undelivered messages, in the ledger's words.
ERROR_REASONS = {
    "21610": "opted_out",
    "21211": "invalid_number",
    "21614": "invalid_number",
    "30003": "unreachable",
    "30004": "blocked",
    "30005": "invalid_number",
    "30006": "invalid_number",
    "30007": "carrier_filtered",
    "30008": "carrier_error",
}


class FormParams(dict[str, str]):
    """A form body: the first value of each name, and every value through ``getall``.

    ``RequestValidator`` signs every value of a repeated name; it asks ``getall`` for them.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        super().__init__()
        self._all: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._all[name].append(value)
            self.setdefault(name, value)

    def getall(self, name: str) -> list[str]:
        return list(self._all.get(name, []))


def keyword(body: str) -> str | None:
    """``stop`` or ``start`` if the whole message is an opt-out or opt-in keyword."""
    text = unicodedata.normalize("NFKC", body).strip().strip(".!。！").strip().casefold()
    if text in STOP_WORDS:
        return "stop"
    if text in START_WORDS:
        return "start"
    return None


@dataclass(frozen=True)
class _Outcome:
    kind: str
    users: int = 0


def twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


def _forbidden(reason: str) -> Response:
    return Response(reason, status_code=403, media_type="text/plain")


def twilio_router(
    settings: Settings, *, session_factory: SessionFactory, clock: Clock
) -> APIRouter:
    """``POST /webhooks/twilio/status`` and ``POST /webhooks/twilio/inbound``."""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    validator = RequestValidator(token) if token else None
    router = APIRouter()

    async def verified_form(request: Request) -> FormParams | Response:
        """The form Twilio signed, or the 403 (or 413) to answer instead."""
        signature = request.headers.get("x-twilio-signature")
        if validator is None:
            log.warning("twilio webhook refused: LIFECYCLE_TWILIO_AUTH_TOKEN is not set")
            return _forbidden("Twilio webhooks are not configured.")
        if not signature:
            return _forbidden("Missing X-Twilio-Signature.")
        try:
            raw = await read_limited(request, MAX_FORM_BYTES)
        except PayloadError as exc:
            return Response(str(exc), status_code=exc.status, media_type="text/plain")
        try:
            params = FormParams(
                parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            )
        except UnicodeDecodeError:
            return _forbidden("Invalid X-Twilio-Signature.")
        url = settings.public_base_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        if not validator.validate(url, params, signature):
            log.info("twilio webhook refused: bad signature on %s", request.url.path)
            return _forbidden("Invalid X-Twilio-Signature.")
        for name, value in params.items():
            problem = shape_problem(value, name)
            if problem is not None:  # a NUL: the database could not store it
                field, why = problem
                await run_in_threadpool(park, request.url.path, dict(params), f"{field} {why}.")
                return Response(f"{field} {why}.", status_code=400, media_type="text/plain")
        return params

    def park(source: str, params: dict[str, str], reason: str) -> None:
        """Keep a signed form the database cannot take, raw, in the dead-letter table."""
        with transaction(session_factory) as session:
            add_rejections(
                session,
                rows=[
                    Rejection(stage="ingest", source=source, reason=reason, raw=raw_json(params))
                ],
                at=clock(),
            )
        metrics().events_rejected("ingest")

    def apply_status(params: FormParams, at: datetime) -> _Outcome:
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        reported = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        status = STATUSES.get(reported)
        if not sid or status is None:
            return _Outcome("ignored")
        code = (params.get("ErrorCode") or "").strip()
        reason = None
        if status in ("failed", "undelivered"):
            reason = ERROR_REASONS.get(code, f"twilio_{code}" if code else reported)
        event_id = f"{sid}:{reported}"
        with transaction(session_factory) as session:
            ref = find_message(session, provider=PROVIDER, provider_message_id=sid)
            if ref is None:
                # Twilio can call back before the send's own ledger update has stored the
                # sid (or about a message that is not ours): held, not dropped.
                hold_status(
                    session,
                    provider=PROVIDER,
                    provider_message_id=sid,
                    provider_event_id=event_id,
                    status=status,
                    reason=reason,
                    received_at=at,
                )
            else:
                # Reports held before the sid was known apply first (this may be a retry of one).
                apply_held_statuses(session, provider=PROVIDER, provider_message_id=sid)
                if not record_provider_event(
                    session,
                    provider=PROVIDER,
                    provider_event_id=event_id,
                    kind=reported,
                    message_id=ref.id,
                    received_at=at,
                ):
                    return _Outcome("duplicate")
                moved = advance_status(
                    session, message_id=ref.id, status=status, at=at, reason=reason
                )
                users = 0
                if code == "21610" and ref.user_id:
                    # The carrier says the number replied STOP: no SMS of any kind.
                    users = set_consent(
                        session,
                        user_ids=[ref.user_id],
                        channel="sms",
                        status="unsubscribed",
                        source="provider_opt_out",
                        at=at,
                    )
                return _Outcome(status if moved else "unchanged", users)
        # Held and committed; if the sid was stored meanwhile, apply it now (the send's
        # update does the same after it commits, so one of the two sees the other).
        with transaction(session_factory) as session:
            applied = apply_held_statuses(session, provider=PROVIDER, provider_message_id=sid)
        return _Outcome("applied_late" if applied else "held")

    def apply_inbound(params: FormParams, at: datetime) -> _Outcome:
        word = keyword(params.get("Body", ""))
        phone = normalize_phone(params.get("From"))
        if word is None or phone is None:
            return _Outcome("ignored")
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        with transaction(session_factory) as session:
            if sid and not record_provider_event(
                session,
                provider=PROVIDER,
                provider_event_id=f"inbound:{sid}",
                kind=word,
                received_at=at,
            ):
                return _Outcome("duplicate")
            users = set_consent(
                session,
                user_ids=users_with_phone(session, phone=phone),
                channel="sms",
                status="unsubscribed" if word == "stop" else "subscribed",
                source=KEYWORD_SOURCE,
                at=at,
            )
        return _Outcome(word, users)

    @router.post("/webhooks/twilio/status")
    async def status_callback(request: Request) -> Response:
        params = await verified_form(request)
        if isinstance(params, Response):
            return params
        outcome = await run_in_threadpool(apply_status, params, clock())
        log.info(
            "twilio status %s for %s: %s",
            params.get("MessageStatus"),
            params.get("MessageSid"),
            outcome.kind,
        )
        return twiml()

    @router.post("/webhooks/twilio/inbound")
    async def inbound(request: Request) -> Response:
        params = await verified_form(request)
        if isinstance(params, Response):
            return params
        outcome = await run_in_threadpool(apply_inbound, params, clock())
        if outcome.kind in ("stop", "start"):
            # Ids and counts only: the number stays out of the logs.
            log.info(
                "sms keyword %s (message %s): %d user(s) changed",
                outcome.kind,
                params.get("MessageSid"),
                outcome.users,
            )
        return twiml()

    return router
