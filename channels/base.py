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
  ``retry_after`` is the delay the provider asked for, in seconds, when it gave one.

Error details never contain the recipient's address or the message text: they end up in
Temporal history and logs, which are stored in plain text.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message addressed to one recipient.

    ``key`` is the ledger's idempotency key: a sender that can de-duplicate (the outbox,
    providers with idempotency headers or custom args) uses it so a retry sends once.

    ``unsubscribe_url`` is the recipient's one-click unsubscribe link (RFC 8058): an email
    channel sends it as ``List-Unsubscribe`` with ``List-Unsubscribe-Post``; other channels
    ignore it. ``tags`` are short labels for the provider's reports (journey, template), e.g.
    SendGrid categories; never personal data.
    """

    key: str
    channel: str  # sms | email | push
    to: str  # E.164 phone, email address or push token
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    unsubscribe_url: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str


class PermanentSendError(Exception):
    """The provider refused for good (bad number, opted out, dead token): do not retry."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class TransientSendError(Exception):
    """The provider could not take the message now (429, 5xx, timeout): retry later.

    Attributes:
        retry_after: Seconds the provider asked us to wait (its ``Retry-After``), or None.
    """

    def __init__(self, detail: str, *, retry_after: float | None = None):
        self.retry_after = retry_after
        suffix = f" (retry after {retry_after:g}s)" if retry_after is not None else ""
        super().__init__(f"{detail}{suffix}")


class Channel(Protocol):
    """Sends one message; raises :class:`PermanentSendError` or :class:`TransientSendError`.

    A channel whose status callbacks may arrive before the send records the provider's id
    sets ``holds_early_statuses = True``: the send then applies the callbacks held meanwhile.
    """

    name: str

    def send(self, message: OutboundMessage) -> SendResult: ...


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
