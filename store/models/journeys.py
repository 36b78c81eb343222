"""Journeys and what they do to users: versions and drafts, saved audiences, enrollments
(runs), and the coupons journeys issue."""

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

# An enrollment's group: the journey's own arms, which its report compares, or SET_ASIDE
# for a user of the global control group (store.program), decided at entry. Such a run is
# sent no marketing message in either arm, so both arms leave it out (the assignments are
# independent: the comparison stays unbiased) and the report counts it apart.
ARMS = ("treatment", "holdout")
SET_ASIDE = "global_control"


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
        # A journey's runs entered since a day: its report and chart (migration 0017).
        Index("ix_enrollments_journey_entered", "journey_id", "entered_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    journey_version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(255))
    entry_key: Mapped[str] = mapped_column(String(255), default="")
    entry_number: Mapped[int] = mapped_column(Integer, default=1)
    group: Mapped[str] = mapped_column(String(16))  # treatment | holdout | global_control
    workflow_id: Mapped[str] = mapped_column(String(1024), unique=True)
    trigger_message_id: Mapped[str | None] = mapped_column(String(255))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(32))
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
        # A journey's coupons, issued since a day: its report (migration 0016).
        Index("ix_coupons_journey_issued", "journey_id", "issued_at"),
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
