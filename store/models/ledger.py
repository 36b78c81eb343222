"""The message ledger, the providers' reports about sends, and the outbox channel's record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JSONType, UTCDateTime


class Message(Base):
    """The ledger: one row per send step occurrence, written before any provider call.

    ``idempotency_key`` is the run's first execution run id + step path + occurrence.
    ``status`` is pending → (``sending``: passed the policy, counted by frequency caps,
    handed to the provider) → sent | skipped | failed; ``reason`` says why not sent. Delivery
    facts the providers report later (:mod:`triggers.webhooks`) move a sent message on:

    - forward only, along pending < sending < sent < ``delivered`` < ``opened`` < ``clicked``
      (a late ``sent`` after ``delivered`` changes nothing);
    - or, before delivery only, to a terminal failure: ``failed`` (the provider gave
      up or dropped it), ``undelivered`` (the carrier did not deliver the SMS), ``bounced``
      (the receiving mail server refused it), each with its ``reason`` and ``failed_at``.

    ``delivered_at``, ``opened_at`` and ``clicked_at`` keep the first time each fact was
    reported, even when facts arrive out of order.
    """

    __tablename__ = "messages"
    __table_args__ = (
        # The console's Messages page: newest first by (created_at, id), alone or after one
        # of its filters, so a page reads one page of rows (migration 0019).
        Index("ix_messages_created", "created_at", "id"),
        Index("ix_messages_channel_created", "channel", "created_at", "id"),
        Index("ix_messages_status_created", "status", "created_at", "id"),
        Index("ix_messages_reason_created", "reason", "created_at", "id"),
        Index("ix_messages_journey_created", "journey_id", "created_at", "id"),
        Index("ix_messages_journey_step_created", "journey_id", "step_id", "created_at", "id"),
        # Frequency caps count a user's recent sends.
        Index("ix_messages_user_sent", "user_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(512), unique=True)
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollments.id", ondelete="SET NULL"), index=True
    )
    journey_id: Mapped[str | None] = mapped_column(String(128))
    step_id: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str | None] = mapped_column(String(64))
    # marketing | transactional: frequency caps and quiet hours apply to marketing only.
    topic: Mapped[str] = mapped_column(String(32), default="marketing", server_default="marketing")
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Broadcast sends: which broadcast, and (while quiet hours hold it) when to ask again.
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    deferred_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The SMS segments the send was billed as (the rendered body's count, or the provider's
    # own report); None for a kind not sent in segments, and for rows older than the count.
    segments: Mapped[int | None] = mapped_column(Integer)


class ProviderEvent(Base):
    """A delivery fact a provider's webhook reported, stored once per provider event id.

    Providers retry their webhooks, so ``(provider, provider_event_id)`` is unique: SendGrid's
    ``sg_event_id``, or for Twilio the message sid with its status (or ``inbound:`` + sid).
    Holds ids and the kind of fact only, never phone numbers or addresses.
    """

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))  # delivered | open | bounce | stop | ...
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OutboxMessage(Base):
    """What the ``outbox`` channel would have sent: the local sink, listed by the CLI.

    Unique on ``message_key`` (the ledger's idempotency key), so a retried send records once.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_key: Mapped[str] = mapped_column(String(512), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
