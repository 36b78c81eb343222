"""Users as the platform knows them: profiles, their push tokens, their consent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JSONType, UTCDateTime


class User(Base):
    """A platform user's profile, keyed by the platform's own ``userId``.

    ``trait_times`` maps each profile field an identify call set (a trait, or ``locale`` /
    ``timezone`` from the device's context) to the ISO instant of the call that set it, so a
    call dated earlier that arrives later does not overwrite it.
    """

    __tablename__ = "users"
    # Finding a user as a marketer knows them (``lifecycle users find``, the console's search):
    # an email in any case, a phone as stored (E.164).
    __table_args__ = (
        Index("ix_users_email_lower", text("lower(email)")),
        Index("ix_users_phone", "phone"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(255), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164, e.g. +8613800138000
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name
    member_tier: Mapped[str | None] = mapped_column(String(32))
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    trait_times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushToken(Base):
    """A device's push token and the user it belongs to now.

    ``created_at`` is when the token was first stored; ``registered_at`` when the fact this
    row holds (its user and platform) happened, so an older registration that arrives later
    does not move the device back. Rows written without it count as of ``created_at``.
    """

    __tablename__ = "push_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(512), unique=True)
    platform: Mapped[str | None] = mapped_column(String(16))  # ios | android | web
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(Base):
    """Subscription state per user, channel (sms/email/push) and topic (marketing/...).

    ``updated_at`` is when the fact the row holds happened (the provider's event time, the
    click, the identify call's timestamp), not when it reached us: an older fact never
    replaces it, and at the same instant an opt-out wins (:func:`store.webhooks.record_consent`).
    """

    __tablename__ = "consents"
    __table_args__ = (
        # Who opted out of a channel and topic, read whole by audiences (migration 0007).
        Index(
            "ix_consents_unsubscribed",
            "channel",
            "topic",
            "user_id",
            postgresql_where="status = 'unsubscribed'",
            sqlite_where="status = 'unsubscribed'",
        ),
    )

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    topic: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # subscribed | unsubscribed
    source: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
