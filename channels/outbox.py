"""The local sink: records what would have been sent, so it can be read back and listed."""

from __future__ import annotations

from typing import Protocol

from channels.base import OutboundMessage, SendResult


class OutboxSink(Protocol):
    def record(self, message: OutboundMessage) -> int:
        """Store ``message`` once per ``message.key``; return its outbox id."""
        ...


class OutboxChannel:
    """A channel that writes to a sink instead of a provider (the local default)."""

    name = "outbox"

    def __init__(self, sink: OutboxSink):
        self._sink = sink

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(
            provider="outbox", provider_message_id=f"outbox-{self._sink.record(message)}"
        )
