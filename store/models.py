"""The schema: profiles, events, consent, coupons, the message ledger, enrollments, journeys.

The same models (and migrations) serve SQLite and PostgreSQL. Instants are UTC-aware
(:class:`~store.types.UTCDateTime`); money is integer fen (¥1 = 100) so 满50减20 never
meets a float.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import JSONType, UTCDateTime

# Stable constraint names, so Alembic migrations are identical on every dialect.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (so it stays the rowid alias and autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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


class Coupon(Base):
    """A coupon issued to a user; ``issue_key`` makes issuing idempotent."""

    __tablename__ = "coupons"
    __table_args__ = (
        # Unused coupons by expiry, with their holder: "expiring within 48h" (migration 0007).
        Index(
            "ix_coupons_unredeemed_expires",
            "expires_at",
            "user_id",
            postgresql_where="redeemed_at IS NULL",
            sqlite_where="redeemed_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issue_key: Mapped[str] = mapped_column(String(512), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    journey_id: Mapped[str | None] = mapped_column(String(128))
    amount_fen: Mapped[int] = mapped_column(Integer)
    min_spend_fen: Mapped[int] = mapped_column(Integer, default=0)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JourneyVersion(Base):
    """One published version of a journey: the YAML as written, the parsed spec, and who
    published it with what note."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))  # published | paused | archived
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Why and by whom; versions published before these were kept have neither.
    note: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str | None] = mapped_column(String(128))


class JourneyDraft(Base):
    """A journey's unpublished edit, one per journey: saved as written, problems and all.

    Not a version with a ``draft`` status: a version is what ran or runs, numbered in the
    order it went live, and every reader of "the latest version" would have to skip drafts.
    """

    __tablename__ = "journey_drafts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    saved_by: Mapped[str] = mapped_column(String(128))


class SavedAudience(Base):
    """One saved version of an audience built in the console: the rule's YAML as saved, who
    saved it and why. A name's latest version is the audience that name means now; the
    earlier ones stay, so what a journey or broadcast matched can be read back."""

    __tablename__ = "saved_audiences"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    saved_by: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")


class Enrollment(Base):
    """One user's run through one journey.

    The unique (journey, user, key, entry number) row, not Temporal, decides re-entry once a
    run has closed.
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("journey_id", "user_id", "entry_key", "entry_number"),
        Index("ix_enrollments_user_open", "user_id", "exited_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    journey_version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(255))
    entry_key: Mapped[str] = mapped_column(String(255), default="")
    entry_number: Mapped[int] = mapped_column(Integer, default=1)
    group: Mapped[str] = mapped_column(String(16))  # treatment | holdout
    workflow_id: Mapped[str] = mapped_column(String(1024), unique=True)
    trigger_message_id: Mapped[str | None] = mapped_column(String(255))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(32))
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
        Index("ix_messages_journey_step", "journey_id", "step_id"),
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


class ControlFlag(Base):
    """Operator switches that hold for every process, e.g. ``sends_paused`` (pause-all)."""

    __tablename__ = "control_flags"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SweepTick(Base):
    """One scheduled sweep of a journey: the unique (journey, tick) row that makes any number
    of scheduler replicas start exactly one ``sweep:{journey}:{tick}`` workflow.

    ``tick`` is the trigger's scheduled fire time (not when a replica noticed it);
    ``started_at`` is set once the workflow start was accepted (or found already started);
    ``cursor`` is the last user id the sweep has entered, so progress is visible and a
    resumed sweep carries on from it.
    """

    __tablename__ = "sweep_ticks"
    __table_args__ = (UniqueConstraint("journey_id", "tick"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    tick: Mapped[datetime] = mapped_column(UTCDateTime)
    workflow_id: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cursor: Mapped[str | None] = mapped_column(String(255))
    members: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    entered: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Broadcast(Base):
    """A one-off campaign: one template on one channel to every member of an audience.

    ``audience`` is the rule (as data) frozen at creation, so a later edit of the file does
    not change who a running broadcast reaches. ``status``: scheduled → running ⇄ paused →
    completed | cancelled.
    """

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    audience: Mapped[Any] = mapped_column(JSONType)
    audience_source: Mapped[str] = mapped_column(String(1024), default="")
    template: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(32), default="marketing", server_default="marketing")
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    workflow_id: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cursor: Mapped[str | None] = mapped_column(String(255))
    recipients: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Percent of the audience held out (sent nothing) for the post-campaign review.
    holdout: Mapped[float] = mapped_column(Float, default=0, server_default="0")
