"""Twilio's webhooks, applied: SMS status callbacks and inbound messages (opt-out keywords).

Twilio signs every request: ``X-Twilio-Signature`` is HMAC-SHA1 under the account's auth
token over the URL it called and the form parameters. That URL is ours as the public sees it
(``settings.public_base_url`` + path), not the one this process was reached at behind a proxy.
:mod:`api.routes.twilio_webhooks` checks that and answers; this module applies what a signed
request says.

An inbound keyword changes consent as of the time it was received (Twilio's request carries
no time of its own); a consent change stored with a later time is left as it is.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from observability.metrics import metrics
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
from triggers.profiles import normalize_phone
from triggers.segment import raw_json

PROVIDER = "twilio"
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
class Outcome:
    """What a webhook request did (``kind``) and to how many users' consent."""

    kind: str
    users: int = 0


def park(
    session: Session, *, source: str, params: dict[str, str], reason: str, at: datetime
) -> None:
    """Keep a signed form the database cannot take, raw, in the dead-letter table."""
    add_rejections(
        session,
        rows=[Rejection(stage="ingest", source=source, reason=reason, raw=raw_json(params))],
        at=at,
    )
    metrics().events_rejected("ingest")


def apply_status(session: Session, params: FormParams, at: datetime) -> Outcome:
    """Apply a status callback: the ledger row moves on, or the report is held until the send
    has stored its sid. Commits on ``session`` itself: a held report is committed before it
    looks again, so the send's own update and this callback cannot miss each other.
    """
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    reported = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    status = STATUSES.get(reported)
    if not sid or status is None:
        return Outcome("ignored")
    code = (params.get("ErrorCode") or "").strip()
    reason = None
    if status in ("failed", "undelivered"):
        reason = ERROR_REASONS.get(code, f"twilio_{code}" if code else reported)
    event_id = f"{sid}:{reported}"
    with session.begin():
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
                return Outcome("duplicate")
            moved = advance_status(session, message_id=ref.id, status=status, at=at, reason=reason)
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
            return Outcome(status if moved else "unchanged", users)
    # Held and committed; if the sid was stored meanwhile, apply it now (the send's
    # update does the same after it commits, so one of the two sees the other).
    with session.begin():
        applied = apply_held_statuses(session, provider=PROVIDER, provider_message_id=sid)
    return Outcome("applied_late" if applied else "held")


def apply_inbound(session: Session, params: FormParams, at: datetime) -> Outcome:
    """Apply an inbound message: an opt-out or opt-in keyword changes the consent of every user
    with that phone number, once per message (in one transaction on ``session``)."""
    word = keyword(params.get("Body", ""))
    phone = normalize_phone(params.get("From"))
    if word is None or phone is None:
        return Outcome("ignored")
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    with session.begin():
        if sid and not record_provider_event(
            session,
            provider=PROVIDER,
            provider_event_id=f"inbound:{sid}",
            kind=word,
            received_at=at,
        ):
            return Outcome("duplicate")
        users = set_consent(
            session,
            user_ids=users_with_phone(session, phone=phone),
            channel="sms",
            status="unsubscribed" if word == "stop" else "subscribed",
            source=KEYWORD_SOURCE,
            at=at,
        )
    return Outcome(word, users)
