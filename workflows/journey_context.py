"""What a journey run reads from its own context, as pure functions of it: the A/B variant a
user gets, the value a context reference names, and a ``wait_until`` step's instant."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from journeys.models import SendStep
from workflows.journey_contracts import CouponRef, EventSignal


def chosen_variant(journey_id: str, user_id: str, step: SendStep) -> tuple[str, str | None]:
    """The template (and A/B variant id) this user gets: a stable, weighted choice."""
    if not step.variants:
        assert step.template is not None
        return step.template, None
    seed = f"{journey_id}\x00{user_id}\x00{step.id}".encode()
    point = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % sum(
        v.weight for v in step.variants
    )
    for variant in step.variants:
        if point < variant.weight:
            return variant.template, variant.id
        point -= variant.weight
    raise AssertionError("unreachable")


def context_value(path: str, trigger: EventSignal, coupon: CouponRef | None) -> Any:
    """The value of ``trigger.event``, ``trigger.timestamp``, ``trigger.properties.NAME`` or
    ``coupon.NAME``; None for anything else."""
    head, _, rest = path.partition(".")
    if head == "trigger":
        if rest == "event":
            return trigger.event
        if rest == "timestamp":
            return trigger.timestamp
        return trigger.properties.get(rest.removeprefix("properties."))
    if head == "coupon":
        if coupon is not None:
            return getattr(coupon, rest, None)
        # A run triggered by `coupon_issued` knows its coupon from the trigger.
        return trigger.properties.get(rest)
    return None


def instant_after(value: Any, offset: timedelta) -> datetime | None:
    """``value`` (an aware datetime, or one written in ISO 8601) moved by ``offset``; None
    if it is not an instant. Past the calendar's end it stays at the end."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    try:
        return value + offset
    except OverflowError:  # 9999-12-31 + 1d: off the calendar
        return datetime.max.replace(tzinfo=value.tzinfo)
