"""Writing a reference :class:`~reference.Population` into the real schema, and checking an
audience against the members expected there."""

from __future__ import annotations

from datetime import datetime

from reference import Population
from sqlalchemy import delete
from sqlalchemy.orm import Session

from audiences.audience import Audience
from store.models import Consent, Coupon, Event, PushToken, User


def seed(session: Session, population: Population, *, at: datetime) -> None:
    """Add every row of ``population`` (bookkeeping columns stamped ``at``) and flush."""
    session.add_all(
        User(
            id=u.id,
            created_at=u.created_at,
            last_seen_at=u.last_seen_at,
            updated_at=at,
            traits=u.traits,
            tags=u.tags,
            member_tier=u.member_tier,
            locale=u.locale,
            timezone=u.timezone,
            phone=u.phone,
            email=u.email,
        )
        for u in population.users
    )
    session.flush()  # users before the rows that reference them
    session.add_all(
        Event(
            message_id=f"m{i}",
            type="track",
            user_id=e.user_id,
            event=e.event,
            properties=e.properties,
            context={},
            timestamp=e.timestamp,
            received_at=at,
        )
        for i, e in enumerate(population.events)
    )
    session.add_all(
        Coupon(
            issue_key=f"k{i}",
            code=f"C{i}",
            user_id=c.user_id,
            amount_fen=2000,
            min_spend_fen=5000,
            issued_at=at,
            expires_at=c.expires_at,
            redeemed_at=c.redeemed_at,
        )
        for i, c in enumerate(population.coupons)
    )
    session.add_all(
        Consent(user_id=c.user_id, channel=c.channel, topic=c.topic, status=c.status, updated_at=at)
        for c in population.consents
    )
    session.add_all(
        PushToken(user_id=t.user_id, token=t.token, platform="ios", created_at=at)
        for t in population.push_tokens
    )
    session.flush()


def clear(session: Session) -> None:
    """Empty the tables :func:`seed` writes."""
    for model in (PushToken, Consent, Coupon, Event, User):
        session.execute(delete(model))


def picks(
    session: Session,
    audience: Audience,
    population: Population,
    expected: set[str],
    *,
    now: datetime,
) -> None:
    """``members``, ``count`` and ``contains`` (for every user) all give ``expected``."""
    assert set(audience.members(session, now=now)) == expected
    assert audience.count(session, now=now) == len(expected)
    for user in population.users:
        assert audience.contains(session, user_id=user.id, now=now) is (user.id in expected), user
