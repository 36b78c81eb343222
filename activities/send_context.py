"""What a message's template is rendered with, and where it goes: the user, the coupon it
is about, the trigger, the signed unsubscribe link, and the recipient's address."""

from __future__ import annotations

from datetime import datetime
from typing import Any, assert_never

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.orders import BroadcastRecipient, JourneyStep, SendOrder
from audiences.addresses import address_of
from kinds import kind
from message_templates.unsubscribe_links import UnsubscribeLinks
from store.models import Coupon, User


def address(session: Session, channel: str, user: User) -> str | None:
    """Where ``channel`` reaches ``user`` (where its kind says the address is), or None."""
    return address_of(session, user, kind(channel))


def coupon_of(session: Session, order: SendOrder, user: User) -> dict[str, Any] | None:
    """The coupon a journey's message is about: one we issued (the step's coupon), or one
    the platform announced in a ``coupon_issued`` trigger (code, amounts and expiry from its
    properties, or our row of that code). A broadcast names no coupon."""
    match order.asked_by:
        case JourneyStep(coupon_id=coupon_id, trigger=trigger):
            coupon = session.get(Coupon, coupon_id) if coupon_id else None
            code = trigger.properties.get("coupon_code")
            if coupon is None and isinstance(code, str):
                stmt = select(Coupon).where(Coupon.code == code, Coupon.user_id == user.id)
                coupon = session.scalar(stmt)
            return _coupon_context(coupon, trigger.properties)
        case BroadcastRecipient():
            return None
        case _:
            assert_never(order.asked_by)


class MessageContext:
    """Builds a template's context, with the defaults for a profile that names none."""

    def __init__(self, links: UnsubscribeLinks, *, default_locale: str, default_timezone: str):
        self._links = links
        self._default_locale = default_locale
        self._default_timezone = default_timezone

    def build(
        self, session: Session, order: SendOrder, user: User, *, message_id: int
    ) -> dict[str, Any]:
        traits = user.traits or {}
        return {
            "user": {
                "id": user.id,
                "name": str(traits.get("name") or traits.get("first_name") or ""),
                "member_tier": user.member_tier,
                "locale": user.locale or self._default_locale,
                "timezone": user.timezone or self._default_timezone,
            },
            "coupon": coupon_of(session, order, user),
            "trigger": order.trigger_context(),
            "unsubscribe_url": self._links.url(
                user_id=user.id,
                channel=order.channel,
                topic=order.topic,
                message_id=message_id,
                now=order.now,
            ),
        }


def _coupon_context(coupon: Coupon | None, trigger: dict[str, Any]) -> dict[str, Any] | None:
    if coupon is not None:
        return {
            "code": coupon.code,
            "amount_fen": coupon.amount_fen,
            "min_spend_fen": coupon.min_spend_fen,
            "expires_at": coupon.expires_at,
        }
    code = trigger.get("coupon_code")
    if not isinstance(code, str):
        return None
    expires: Any = trigger.get("expires_at")
    if isinstance(expires, str):
        try:
            expires = datetime.fromisoformat(expires)
        except ValueError:
            expires = None
    return {
        "code": code,
        "amount_fen": trigger.get("amount_fen"),
        "min_spend_fen": trigger.get("min_spend_fen", 0),
        "expires_at": expires,
    }
