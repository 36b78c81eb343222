"""A user's address for a channel kind, read where the kind says it is (``kinds``).

The audience compiler asks the same description in SQL (``reachable``); this is the one
user, in Python, for the sends and the reports that show whom a user can be reached by.
"""

from __future__ import annotations

from typing import assert_never

from sqlalchemy import select
from sqlalchemy.orm import Session

from kinds import ChannelKind, DeviceTokens, ProfileColumn, ProfileTrait
from store.models import PushToken, User


def address_of(session: Session, user: User, described: ChannelKind) -> str | None:
    """Where ``user`` receives ``described`` messages (a phone number, an email address,
    the newest push token), or None when they have no address for it."""
    match described.address:
        case ProfileColumn(name):
            value = getattr(user, name)
            return str(value) if value else None
        case ProfileTrait(name):
            trait = (user.traits or {}).get(name)
            return trait if isinstance(trait, str) and trait else None
        case DeviceTokens():
            stmt = (
                select(PushToken.token)
                .where(PushToken.user_id == user.id)
                .order_by(PushToken.created_at.desc())
                .limit(1)
            )
            return session.scalar(stmt)
        case _:
            assert_never(described.address)
