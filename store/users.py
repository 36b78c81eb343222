"""Finding a user the way a marketer knows them: by id, email or phone."""

from __future__ import annotations

import re

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from store.models import User

# What a typed phone number may hold besides digits.
_PHONE_TYPED = re.compile(r"[0-9+\s\-()]+")
# A national number typed without its country code has at least this many digits.
_MIN_NATIONAL_DIGITS = 7


def find_users(
    session: Session, *, query: str, phone: str | None = None, limit: int = 20
) -> list[User]:
    """Users whose id is ``query``, whose email is ``query`` (in any case), or whose phone is
    ``phone`` (E.164, normalised by the caller as profiles are); by id. Only when none is,
    users whose phone ends with the digits typed (a national number such as
    ``138 0013 8000``, without its country code).

    The id, the lower-cased email and the phone are indexed, so an exact match is found
    without reading the table; the ends-with fallback reads the phones of every user.
    """
    query = query.strip()
    if not query:
        return []
    matches = [User.id == query]
    if "@" in query:
        matches.append(func.lower(User.email) == query.lower())
    if phone is not None:
        matches.append(User.phone == phone)
    found = list(session.scalars(select(User).where(or_(*matches)).order_by(User.id).limit(limit)))
    digits = re.sub(r"\D", "", query)
    if found or not _PHONE_TYPED.fullmatch(query) or len(digits) < _MIN_NATIONAL_DIGITS:
        return found
    ends_with = User.phone.endswith(digits, autoescape=True)
    return list(session.scalars(select(User).where(ends_with).order_by(User.id).limit(limit)))
