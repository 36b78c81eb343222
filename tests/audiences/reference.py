"""A pure-Python reference evaluator for audience rules, written from the rule language's
documented semantics (``audiences/rules.py``) and sharing no code with the compiler.

It reads rules as marketers write them (the mapping loaded from YAML/JSON, not the parsed
tree) and users as plain dataclasses, so a disagreement with the compiled SQL points at one
of the two rather than at a shared helper. Rules are assumed valid: the parser's error
handling is tested separately.

Semantics implemented (two-valued throughout):

- A value is read as the comparison's type: a string is a JSON string, a number a JSON
  number (not a bool) compared as a float, a bool a JSON bool, a timestamp a JSON string
  holding an ISO-8601 instant with an explicit offset (``Z`` or ``+HH:MM``) compared as an
  instant. Missing values and values of another type never match, so ``not`` of them does.
- The type is the declared ``type``, else the operand's (the first element for ``in``);
  ``exists`` without a declared type reads the value as a string.
- Strings compare by code point; ``contains`` is a substring test, ``starts_with`` a prefix.
- Events count when ``timestamp <= now`` and, with ``within``, ``timestamp >= now - within``.
- ``signed_up`` reads the user's first ``user_signed_up`` event at or before now, and
  ``created_at`` (first seen) for a user without one; ``within`` is inclusive at both ends,
  ``before`` strict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$", re.ASCII
)
_DURATION = re.compile(r"(\d+)([wdhms])", re.ASCII)
_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_COLUMNS = {"tier": "member_tier", "locale": "locale", "timezone": "timezone"}


@dataclass
class UserRow:
    id: str
    created_at: datetime
    last_seen_at: datetime | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    tags: list[Any] = field(default_factory=list)
    member_tier: str | None = None
    locale: str | None = None
    timezone: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass
class EventRow:
    user_id: str | None
    event: str
    timestamp: datetime
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class CouponRow:
    user_id: str
    expires_at: datetime
    redeemed_at: datetime | None = None


@dataclass
class ConsentRow:
    user_id: str
    channel: str
    topic: str
    status: str  # subscribed | unsubscribed


@dataclass
class PushTokenRow:
    user_id: str
    token: str


@dataclass
class Population:
    users: list[UserRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    coupons: list[CouponRow] = field(default_factory=list)
    consents: list[ConsentRow] = field(default_factory=list)
    push_tokens: list[PushTokenRow] = field(default_factory=list)

    def members(self, rule: Mapping[str, Any], now: datetime) -> set[str]:
        """The ids of the users the reference puts in the audience of ``rule`` at ``now``."""
        return {
            user.id
            for user in self.users
            if evaluate(rule, user, self.events, self.coupons, self.consents, self.push_tokens, now)
        }


def evaluate(
    rule: Mapping[str, Any],
    user: UserRow,
    events: Iterable[EventRow],
    coupons: Iterable[CouponRow],
    consents: Iterable[ConsentRow],
    push_tokens: Iterable[PushTokenRow],
    now: datetime,
) -> bool:
    """Whether ``user`` is in the audience of ``rule`` at ``now``.

    The row collections may hold other users' rows too; only ``user``'s are looked at.
    """
    return _Evaluation(
        user,
        [e for e in events if e.user_id == user.id],
        [c for c in coupons if c.user_id == user.id],
        [c for c in consents if c.user_id == user.id],
        [t for t in push_tokens if t.user_id == user.id],
        now,
    ).holds(rule)


def parse_duration(text: str) -> timedelta:
    """``"7d"``, ``"1h30m"``, ``"2w"``: numbers with units w, d, h, m, s."""
    text = text.strip().lower()
    if not text or _DURATION.sub("", text):
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(seconds=sum(int(n) * _SECONDS[u] for n, u in _DURATION.findall(text)))


def read_instant(value: Any) -> datetime | None:
    """``value`` as an instant if it is an ISO-8601 string with an explicit offset."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str) or not _INSTANT.match(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # e.g. February 30th, or an offset of 24 hours
        return None


def read_as(value: Any, vtype: str) -> Any:
    """``value`` read as ``vtype``, or None when it is missing or of another type."""
    if vtype == "string":
        return value if isinstance(value, str) else None
    if vtype == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    if vtype == "bool":
        return value if isinstance(value, bool) else None
    if vtype == "timestamp":
        return read_instant(value)
    raise ValueError(f"unknown type {vtype!r}")


def _type_of(operand: Any) -> str:
    if isinstance(operand, bool):
        return "bool"
    if isinstance(operand, int | float):
        return "number"
    if isinstance(operand, datetime):
        return "timestamp"
    return "string"


def compare(value: Any, spec: Mapping[str, Any]) -> bool:
    """``value`` against one comparison spec such as ``{gte: 18}`` or ``{type: number, ...}``."""
    spec = dict(spec)
    declared = spec.pop("type", None)
    ((op, operand),) = spec.items()
    if op == "exists":
        return (read_as(value, declared or "string") is not None) == operand
    vtype = declared or _type_of(operand[0] if op == "in" else operand)
    mine = read_as(value, vtype)
    if mine is None:
        return False
    if op == "in":
        return any(mine == _operand(o, vtype) for o in operand)
    other = _operand(operand, vtype)
    match op:
        case "eq":
            return bool(mine == other)
        case "ne":
            return bool(mine != other)
        case "gt":
            return bool(mine > other)
        case "gte":
            return bool(mine >= other)
        case "lt":
            return bool(mine < other)
        case "lte":
            return bool(mine <= other)
        case "contains":
            return bool(other in mine)
        case "starts_with":
            return bool(mine.startswith(other))
    raise ValueError(f"unknown operator {op!r}")


def _operand(operand: Any, vtype: str) -> Any:
    """A rule's operand: a timestamp operand is any ISO-8601 text with an offset."""
    if vtype == "timestamp" and isinstance(operand, str):
        return datetime.fromisoformat(operand)
    return read_as(operand, vtype)


_MISSING = object()


@dataclass
class _Evaluation:
    user: UserRow
    events: list[EventRow]
    coupons: list[CouponRow]
    consents: list[ConsentRow]
    push_tokens: list[PushTokenRow]
    now: datetime

    def holds(self, rule: Mapping[str, Any]) -> bool:
        ((key, body),) = rule.items()
        now = self.now
        match key:
            case "all":
                return all(self.holds(r) for r in body)
            case "any":
                return any(self.holds(r) for r in body)
            case "not":
                return not self.holds(body)
            case "trait":
                spec = dict(body)
                name = spec.pop("name")
                return compare(self.user.traits.get(name, _MISSING), spec)
            case "tier" | "locale" | "timezone":
                spec = {"eq": body} if isinstance(body, str) else dict(body)
                return compare(getattr(self.user, _COLUMNS[key]), spec | {"type": "string"})
            case "tag":
                return any(isinstance(t, str) and t == body for t in self.user.tags)
            case "signed_up":
                signed = self._signed_up_at()
                if "within" in body:
                    return now - parse_duration(body["within"]) <= signed <= now
                return signed < now - parse_duration(body["before"])
            case "last_seen":
                seen = self.user.last_seen_at
                if "within" in body:
                    return seen is not None and now - parse_duration(body["within"]) <= seen <= now
                return seen is None or seen < now - parse_duration(body["not_within"])
            case "event":
                return self._event(body)
            case "coupon":
                horizon = now + parse_duration(body["expiring_within"])
                return any(
                    c.redeemed_at is None and now < c.expires_at <= horizon for c in self.coupons
                )
            case "open_cart":
                window = body.get("within") if isinstance(body, Mapping) else None
                return self._open_cart(parse_duration(window) if window else None)
            case "subscribed":
                topic = body.get("topic", "marketing")
                return not any(
                    c.channel == body["channel"] and c.topic == topic and c.status == "unsubscribed"
                    for c in self.consents
                )
            case "reachable":
                if body == "sms":
                    return bool(self.user.phone)
                if body == "email":
                    return bool(self.user.email)
                return bool(self.push_tokens)
        raise ValueError(f"unknown condition {key!r}")

    def _signed_up_at(self) -> datetime:
        """The user's first ``user_signed_up`` at or before now; without one, when the
        profile was first seen."""
        signups = [e.timestamp for e in self.events if e.event == "user_signed_up"]
        return min((t for t in signups if t <= self.now), default=self.user.created_at)

    def _in_window(self, at: datetime, within: timedelta | None) -> bool:
        return at <= self.now and (within is None or at >= self.now - within)

    def _event(self, body: Mapping[str, Any]) -> bool:
        within = parse_duration(body["within"]) if "within" in body else None
        where = body.get("where", {})
        matching = [
            e
            for e in self.events
            if e.event == body["name"]
            and self._in_window(e.timestamp, within)
            and all(compare(e.properties.get(p, _MISSING), spec) for p, spec in where.items())
        ]
        if "sum" in body:
            spec = dict(body["sum"])
            prop = spec.pop("property")
            amounts = (read_as(e.properties.get(prop, _MISSING), "number") for e in matching)
            total = sum(a for a in amounts if a is not None)
            return compare(total, spec)
        for op, check in (
            ("at_least", lambda n: len(matching) >= n),
            ("at_most", lambda n: len(matching) <= n),
            ("exactly", lambda n: len(matching) == n),
        ):
            if op in body:
                return bool(check(body[op]))
        return len(matching) >= 1

    def _open_cart(self, within: timedelta | None) -> bool:
        for cart in self.events:
            cart_id = cart.properties.get("cart_id")
            if cart.event != "cart_updated" or not isinstance(cart_id, str):
                continue
            if not self._in_window(cart.timestamp, within):
                continue
            ordered = any(
                order.event == "order_placed"
                and cart.timestamp <= order.timestamp <= self.now
                and isinstance(order.properties.get("cart_id"), str)
                and order.properties["cart_id"] == cart_id
                for order in self.events
            )
            if not ordered:
                return True
        return False
