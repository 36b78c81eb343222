"""One line of text per rule, for previews ("why did this user match?")."""

from __future__ import annotations

from datetime import datetime, timedelta

from audiences.rules import (
    All,
    AnyOf,
    Compare,
    CouponExpiring,
    EventCount,
    Field,
    LastSeen,
    Not,
    OpenCart,
    Reachable,
    Rule,
    SignedUp,
    Subscribed,
    Tag,
    Trait,
)
from journeys.durations import format_duration


def _span(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else "ever"


def _cmp(subject: str, c: Compare) -> str:
    if c.op == "exists":
        return f"{subject} {'is set' if c.operand else 'is not set'}"
    operand = list(c.operand) if c.op == "in" else c.operand
    return f"{subject} {c.op} {operand!r}"


def describe_signed_up(
    rule: SignedUp, *, signed_up_at: datetime | None, first_seen: datetime, now: datetime
) -> str:
    """``rule`` and the instant it read for one user: their first ``user_signed_up``
    (``signed_up_at``), or when the profile was first seen if they never sent one."""
    if signed_up_at is not None:
        return f"{describe(rule)}: signed up {_ago(signed_up_at, now)} (first user_signed_up)"
    return f"{describe(rule)}: no user_signed_up, first seen {_ago(first_seen, now)}"


def _ago(at: datetime, now: datetime) -> str:
    """``3d ago``, ``5h ago``, ``12m ago`` (whole units, the largest that fits)."""
    if at > now:
        return "after now"
    elapsed = now - at
    for unit, size in (("d", timedelta(days=1)), ("h", timedelta(hours=1))):
        if elapsed >= size:
            return f"{elapsed // size}{unit} ago"
    return f"{elapsed // timedelta(minutes=1)}m ago"


def describe(rule: Rule) -> str:
    match rule:
        case All(rules):
            return "all of (" + "; ".join(describe(r) for r in rules) + ")"
        case AnyOf(rules):
            return "any of (" + "; ".join(describe(r) for r in rules) + ")"
        case Not(inner):
            return f"not ({describe(inner)})"
        case Trait(name, c):
            return _cmp(f"trait {name}", c)
        case Field(column, c):
            return _cmp(column.replace("member_", ""), c)
        case Tag(tag):
            return f"tagged {tag}"
        case SignedUp(within, before):
            return (
                f"signed up within {_span(within)}"
                if within
                else f"signed up over {_span(before)} ago"
            )
        case LastSeen(within, not_within):
            return f"seen within {_span(within)}" if within else f"not seen for {_span(not_within)}"
        case EventCount(name, op, n, within, where, total):
            filters = "".join(f", {_cmp(p.name, p.compare)}" for p in where)
            if total is not None:
                amount = f"sum of {total.property} {total.op} {total.value:g}"
                return f"{name} {amount} within {_span(within)}{filters}"
            return f"{name} {op.replace('_', ' ')} {n}× within {_span(within)}{filters}"
        case CouponExpiring(within):
            return f"unused coupon expiring within {_span(within)}"
        case OpenCart(within):
            return f"open cart (updated within {_span(within)})"
        case Subscribed(channel, topic):
            return f"subscribed to {topic} {channel}"
        case Reachable(channel):
            return f"reachable by {channel}"
    return repr(rule)
