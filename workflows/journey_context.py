"""What a journey run reads from its own context, as pure functions of it: what an event means
to the run, the A/B variant a user gets, the value a context reference names, a
``wait_until`` step's instant, and the coupon a control run is not given."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from journeys.conditions import matches
from journeys.models import Journey, SendStep, WaitForStep, WaitUntilStep
from workflows.journey_contracts import CouponRef, EventSignal, IssueCouponInput, JourneyInput

# The furthest a wait_until waits for an instant it read from an event (ten years); beyond it
# the step does not wait, as for a value that is not an instant.
MAX_WAIT_UNTIL = timedelta(days=3653)


class Meaning(StrEnum):
    """What an event means to a run (:func:`meaning`)."""

    OTHER_ENTRY = "other"
    GOAL = "goal"
    EXIT = "exit"
    RESTART = "restart"
    HEARD = ""


def meaning(
    journey: Journey, ev: EventSignal, *, entry_key: str, deadline: datetime, trigger_id: str
) -> Meaning:
    """What ``ev`` means to a run of ``journey``: another entry's event (another cart's: not
    the run's business), its goal (inside the window ending at ``deadline``), an exit, a
    newer trigger of a ``restart`` journey, or "" (heard, e.g. for a later ``wait_for``)."""
    key = journey.trigger.key
    if key and key in ev.properties and str(ev.properties[key]) != entry_key:
        return Meaning.OTHER_ENTRY
    goal = journey.goal
    if (
        goal
        and ev.event in goal.events()
        and ev.timestamp <= deadline
        and matches(goal.where, ev.properties)
    ):
        return Meaning.GOAL
    if ev.event in journey.exit_on:
        return Meaning.EXIT
    if (
        ev.event == journey.trigger.event
        and journey.trigger.on_repeat == "restart"
        and ev.message_id != trigger_id
        and matches(journey.trigger.where, ev.properties)
    ):
        return Meaning.RESTART
    return Meaning.HEARD


def arrival(events: list[EventSignal], used: set[str], step: WaitForStep) -> EventSignal | None:
    """The first event heard (and not ``used`` yet) that ``step`` waits for."""
    return next(
        (
            ev
            for ev in events
            if ev.message_id not in used
            and ev.event == step.event
            and matches(step.where, ev.properties)
        ),
        None,
    )


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


def control_reason(inp: JourneyInput) -> str:
    """Why the run's user is a control, in the words the ledger uses for their skipped sends:
    ``held_out`` (the journey's holdout), ``global_control``; "" for an exposed user."""
    if inp.group == "holdout":
        return "held_out"
    return "global_control" if inp.global_control else ""


def withheld_coupon(issue: IssueCouponInput, why: str) -> CouponRef:
    """The coupon ``issue`` would have issued, not issued (``why``: held_out,
    global_control): no id or code, the same amount and expiry, so a later branch or wait on
    ``coupon.*`` goes the way an exposed run's does."""
    return CouponRef(
        coupon_id=0,
        code="",
        amount_fen=issue.amount_fen,
        min_spend_fen=issue.min_spend_fen,
        expires_at=issue.now + issue.valid_for,
        withheld=why,
    )


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


def wait_target(
    step: WaitUntilStep, trigger: EventSignal, coupon: CouponRef | None, now: datetime
) -> tuple[datetime | None, str]:
    """The instant a ``wait_until ... at:`` step waits for; None, and why, if it does not wait."""
    ref, offset = step.parts()
    instant = instant_after(context_value(ref, trigger, coupon), offset)
    if instant is None:
        return None, f"{ref} is not an instant"
    if instant - now > MAX_WAIT_UNTIL:
        # An instant from an event can be anything; a run parked for centuries (or a timer
        # Temporal refuses, failing every task) serves nobody.
        return None, f"{ref} is more than {MAX_WAIT_UNTIL} ahead"
    return instant, ""
