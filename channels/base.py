"""The one protocol every sender implements; nothing provider-specific crosses it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message addressed to one recipient.

    ``key`` is the ledger's idempotency key: a sender that can de-duplicate (the outbox,
    providers with idempotency headers or custom args) uses it so a retry sends once.
    """

    key: str
    channel: str  # sms | email | push
    to: str  # E.164 phone, email address or push token
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str


class PermanentSendError(Exception):
    """The provider refused for good (bad number, opted out, dead token): do not retry."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class Channel(Protocol):
    """Sends one message; raises :class:`PermanentSendError` or a transient exception."""

    name: str

    def send(self, message: OutboundMessage) -> SendResult: ...
