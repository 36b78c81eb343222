"""Operator switches: pause-all holds every send, everywhere, until resume-all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import ControlFlag

SENDS_PAUSED = "sends_paused"


# Built once: every send asks it.
_PAUSED = select(ControlFlag.value).where(ControlFlag.name == SENDS_PAUSED)


def sends_paused(session: Session) -> bool:
    """Whether an operator has paused all sends."""
    session.flush()  # a switch turned in this session counts (Core reads no pending object)
    return session.connection().execute(_PAUSED).scalar() == "true"


def set_sends_paused(session: Session, *, paused: bool, now: datetime) -> None:
    flag = session.get(ControlFlag, SENDS_PAUSED)
    if flag is None:
        flag = ControlFlag(name=SENDS_PAUSED)
        session.add(flag)
    flag.value, flag.updated_at = ("true" if paused else "false"), now
