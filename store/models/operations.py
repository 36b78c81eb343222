"""Running the engine: the operator's switches, scheduled sweeps' ticks, broadcasts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JSONType, UTCDateTime


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
    # The saved audience version the sweep reached (None: a shipped or inline audience), and
    # why it stopped for good, if it failed (``finished_at`` is then when it failed).
    audience_version: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


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
