"""When a user signed up, as the ``signed_up`` rule reads it, compiled to SQL.

A user's sign-up is their first ``user_signed_up`` event at or before ``now`` (the KPIs'
definition of a signup; later events have not happened yet, as for ``event`` conditions).
A profile without one (imported, or a legacy user from before the platform sent the event)
falls back to ``users.created_at``: when the profile was first seen, which for anyone else
may be a first product view long before the sign-up, or a sign-up that arrived late.

``within: D`` holds when that instant is in ``[now - D, now]``, ``before: D`` when it is
before ``now - D``. Neither shape takes a minimum over a user's events; both ask whether a
sign-up exists in a span, which the events indexes answer: ``(user_id, event, timestamp)``
for one user's sign-ups, ``(event, timestamp, user_id)`` for everyone who signed up in one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import aliased

from audiences.rules import SignedUp
from store.kpi_queries import SIGNUP
from store.models import Event, User

# ``now + offset`` as a bound parameter (the compiler's, so statements serve any ``now``).
At = Callable[[timedelta], Any]


def signed_up(rule: SignedUp, at: At, *, correlated: bool) -> ColumnElement[bool]:
    """``rule`` for the user of the outer query: probes of this user's sign-ups when
    ``correlated`` (one user), else ``users.id IN`` the list of the users it holds for."""
    if not correlated:
        return User.id.in_(_ids(rule, at))
    now, start = at(timedelta(0)), _start(rule, at)
    if rule.within is not None:
        signed = and_(
            _signups(User.id, Event.timestamp >= start, Event.timestamp <= now),
            ~_signups(User.id, Event.timestamp < start),
        )
        first_seen = and_(User.created_at >= start, User.created_at <= now)
    else:
        signed = _signups(User.id, Event.timestamp < start)
        first_seen = User.created_at < start
    never = ~_signups(User.id, Event.timestamp <= now)
    return or_(signed, and_(never, first_seen))


def first_signup(now: Any) -> Any:
    """The first sign-up at or before ``now`` of the user of the outer query (NULL without
    one), as :func:`signed_up` reads it: for saying which instant a user was judged by."""
    signups = select(sa.func.min(Event.timestamp)).where(
        Event.user_id == User.id, Event.event == SIGNUP, Event.timestamp <= now
    )
    return signups.scalar_subquery()


def _ids(rule: SignedUp, at: At) -> Any:
    """The users ``rule`` holds for: those whose first sign-up is in the span (read from
    the sign-ups in it), and those without a sign-up first seen in it."""
    now, start = at(timedelta(0)), _start(rule, at)
    first = aliased(Event)
    if rule.within is not None:
        in_span = [first.timestamp >= start, first.timestamp <= now]
        not_earlier = [~_signups(first.user_id, Event.timestamp < start)]
        first_seen = [User.created_at >= start, User.created_at <= now]
    else:
        in_span, not_earlier = [first.timestamp < start], []
        first_seen = [User.created_at < start]
    signed: Select[Any] = select(first.user_id).where(
        first.event == SIGNUP, *in_span, first.user_id.is_not(None), *not_earlier
    )
    never = ~_signups(User.id, Event.timestamp <= now)
    # Not correlated with the outer query's users: a list of its own.
    unsigned = select(User.id).where(*first_seen, never).correlate(None)
    return sa.union(signed, unsigned)


def _start(rule: SignedUp, at: At) -> Any:
    span = rule.within if rule.within is not None else rule.before
    assert span is not None
    return at(-span)


def _signups(user_id: Any, *terms: ColumnElement[bool]) -> ColumnElement[bool]:
    """Whether the user ``user_id`` names has a sign-up for which ``terms`` hold."""
    return sa.exists(select(1).where(Event.user_id == user_id, Event.event == SIGNUP, *terms))
