"""What the platform sent: stored events, and the calls the API refused or the router parked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JSONType, UTCDateTime


class Event(Base):
    """Every call the platform sent, stored once by its ``messageId``.

    ``routed_at`` is set once the router has acted on it; a retried duplicate whose first
    delivery was stored but never routed is routed then.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_user_event_ts", "user_id", "event", "timestamp"),
        # Audiences over the population: one event's rows in a time window (migration 0007).
        Index("ix_events_event_ts_user", "event", "timestamp", "user_id"),
        # "Ordered since?" probes per user (open carts, never ordered): a small index.
        Index(
            "ix_events_orders_user_ts",
            "user_id",
            "timestamp",
            postgresql_where="event = 'order_placed'",
            sqlite_where="event = 'order_placed'",
        ),
        # The pending-event loop's read: unrouted events only (migration 0009).
        Index(
            "ix_events_unrouted",
            "id",
            postgresql_where="routed_at IS NULL",
            sqlite_where="routed_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # track | identify | page | screen | ...
    user_id: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    event: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Failed routing attempts; at the router's limit the event is parked (rejected_events).
    route_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RejectedEvent(Base):
    """The dead-letter table: what the API refused and what the router gave up on.

    ``stage`` is ``ingest`` (a call refused at the API: ``raw`` is the item as sent, ``field``
    and ``reason`` say what was wrong) or ``route`` (a stored event, ``event_id``, whose
    routing failed ``attempts`` times). ``lifecycle events replay ID`` runs it again and
    records the outcome in ``replayed_at`` / ``replay_result``.
    """

    __tablename__ = "rejected_events"
    __table_args__ = (Index("ix_rejected_events_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(16))  # ingest | route
    source: Mapped[str] = mapped_column(String(64))  # /v1/batch, /v1/track, router ...
    message_id: Mapped[str | None] = mapped_column(String(255))
    field: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)  # ASCII JSON of the item as received
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replay_result: Mapped[str | None] = mapped_column(Text)
