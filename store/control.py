"""Operator switches: pause-all holds every send, everywhere, until resume-all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.models import ControlFlag

SENDS_PAUSED = "sends_paused"


def sends_paused(session: Session) -> bool:
    """Whether an operator has paused all sends."""
    flag = session.get(ControlFlag, SENDS_PAUSED)
    return flag is not None and flag.value == "true"


def set_sends_paused(session: Session, *, paused: bool, now: datetime) -> None:
    flag = session.get(ControlFlag, SENDS_PAUSED)
    if flag is None:
        flag = ControlFlag(name=SENDS_PAUSED)
        session.add(flag)
    flag.value, flag.updated_at = ("true" if paused else "false"), now
