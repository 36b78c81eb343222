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
    ``phone`` (E.164, normalised by the caller as profiles are) or ends with the digits typed
    (a national number such as ``138 0013 8000``, without its country code); by id.

    Email and phone are not indexed: on a large table those two look-ups scan it.
    """
    query = query.strip()
    if not query:
        return []
    matches = [User.id == query]
    if "@" in query:
        matches.append(func.lower(User.email) == query.lower())
    if phone is not None:
        matches.append(User.phone == phone)
    digits = re.sub(r"\D", "", query)
    if _PHONE_TYPED.fullmatch(query) and len(digits) >= _MIN_NATIONAL_DIGITS:
        matches.append(User.phone.endswith(digits, autoescape=True))
    found = session.scalars(select(User).where(or_(*matches)).order_by(User.id).limit(limit))
    return list(found)
