"""The one protocol every sender implements; nothing provider-specific crosses it.

A channel's ``send`` either returns a :class:`SendResult` or raises one of two errors:

- :class:`PermanentSendError` — the provider refused for good; its ``reason`` is one of the
  words below and is what the ledger records:

  ``invalid_number``      the phone number is not a valid mobile number;
  ``opted_out``           the recipient replied STOP (the provider blocks the number);
  ``unreachable``         the number cannot receive this message (landline, region, carrier);
  ``unregistered_token``  the push token is dead (app uninstalled, token rotated);
  ``invalid_argument``    the provider says the request itself is malformed;
  ``provider_auth``       our credentials were refused (a configuration problem);
  ``rejected``            any other refusal of this one message.

- :class:`TransientSendError` — try again later (rate limit, provider outage, timeout); its
  ``retry_after`` is the delay the provider asked for, in seconds, when it gave one, never
  more than :data:`MAX_RETRY_AFTER`.

Error details never contain the recipient's address or the message text: they end up in
Temporal history and logs, which are stored in plain text.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

# The longest wait a provider's Retry-After may impose on a send. Real rate-limit windows
# (Twilio's 429s, SendGrid's per-minute X-RateLimit-Reset, FCM's per-minute quota) clear
# within a few minutes; anything longer is an outage or a bogus header (an HTTP date in 2099
# would park the send for 73 years). Ten minutes is twice the journey's retry policy's
# maximum interval (5 min): we still wait longer than our own backoff would, as asked, and
# past it the retry policy's backoff takes over.
MAX_RETRY_AFTER = 600.0


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message addressed to one recipient.

    ``key`` is the ledger's idempotency key: a sender that can de-duplicate (the outbox,
    providers with idempotency headers or custom args) uses it so a retry sends once.

    ``unsubscribe_url`` is the recipient's one-click unsubscribe link (RFC 8058): an email
    channel sends it as ``List-Unsubscribe`` with ``List-Unsubscribe-Post``; other channels
    ignore it. ``tags`` are short labels for the provider's reports (journey, template), e.g.
    SendGrid categories; never personal data.

    ``priority`` (``high`` or ``normal``), ``ttl_seconds`` (how long an undelivered push
    stays worth delivering) and ``sound`` are push delivery options; other channels ignore
    them, and None leaves each to the provider's default.
    """

    key: str
    channel: str  # its kind: sms, email, push, or any registered kind
    to: str  # the address its kind names: E.164 phone, email address, push token ...
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    unsubscribe_url: str | None = None
    tags: tuple[str, ...] = ()
    priority: str | None = None
    ttl_seconds: int | None = None
    sound: str | None = None


@dataclass(frozen=True)
class SendResult:
    """The provider took the message.

    ``provider_message_id`` is the provider's id for it, or None when the provider accepted
    without naming one (a SendGrid 202 without ``X-Message-Id``): the ledger then knows the
    message by our key alone, which the provider's webhooks echo back.
    """

    provider: str
    provider_message_id: str | None


class PermanentSendError(Exception):
    """The provider refused for good (bad number, opted out, dead token): do not retry."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class TransientSendError(Exception):
    """The provider could not take the message now (429, 5xx, timeout): retry later.

    Attributes:
        retry_after: Seconds the provider asked us to wait (its ``Retry-After``), at most
            :data:`MAX_RETRY_AFTER`, or None.
    """

    def __init__(self, detail: str, *, retry_after: float | None = None):
        # Capped here, where every channel's delay passes, so no provider's header (nor
        # SendGrid's X-RateLimit-Reset) can become a retry delay of years.
        if retry_after is not None:
            retry_after = min(retry_after, MAX_RETRY_AFTER)
        self.retry_after = retry_after
        suffix = f" (retry after {retry_after:g}s)" if retry_after is not None else ""
        super().__init__(f"{detail}{suffix}")


class Channel(Protocol):
    """Sends one message; raises :class:`PermanentSendError` or :class:`TransientSendError`.

    What a channel can do besides sending is a protocol of its own, asked with
    ``isinstance``: :class:`FindsSent`, :class:`HoldsEarlyStatuses`.
    """

    name: str

    def send(self, message: OutboundMessage) -> SendResult: ...


@runtime_checkable
class FindsSent(Protocol):
    """A channel that can find the message an earlier attempt of a send created.

    A provider that takes no idempotency key (Twilio) is asked on a retried attempt before it
    sends again: a worker may have died between the provider's answer and the ledger update.
    """

    def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        """The provider's earlier message that is ``message``, sent since ``since``, or None.

        Raises:
            TransientSendError: The provider could not answer now; sending blind could
                double the message.
        """
        ...


@runtime_checkable
class HoldsEarlyStatuses(Protocol):
    """A channel whose status callbacks may arrive before the send records the provider's
    id: the webhook holds them (``store.webhooks.hold_status``) and the send applies them
    once the id is stored; held ones nobody claims are purged after a week."""

    name: str
    holds_early_statuses: Literal[True]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110: delay-seconds or HTTP-date).

    Returns:
        A non-negative number of seconds, or None when the header is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        # A transport delay, not business time: the wall clock is the right one here.
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


_EMAIL = re.compile(r"[^\s<>\"'@]+@[^\s<>\"'@]+")
_PHONE = re.compile(r"\+?\d[\d ().-]{6,}\d")


def scrub(text: str) -> str:
    """``text`` with email addresses and phone-like numbers replaced, for errors and logs."""
    return _PHONE.sub("<number>", _EMAIL.sub("<email>", text))
