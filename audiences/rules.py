"""The audience rule language: parsed from YAML/JSON into a small, typed tree.

A rule is a mapping with exactly one key naming the condition::

    all: [RULE, ...]            every one holds (an empty list holds for everyone)
    any: [RULE, ...]            at least one holds (an empty list holds for no one)
    not: RULE                   the rule does not hold

    trait: {name: city, eq: 上海}            typed trait comparison; ops:
        eq ne in gt gte lt lte exists contains starts_with; optional
        type: string | number | bool | timestamp (default: from the value)
    tag: 母婴人群                             the user carries the tag
    tier: 金卡  |  tier: {in: [金卡, 钻石]}   member tier (eq, ne, in, exists)
    locale: {starts_with: zh}                 locale (string ops)
    timezone: {eq: Asia/Shanghai}             IANA timezone (string ops)
    signed_up: {within: 7d} | {before: 7d}    signed up in the last 7 days / longer ago: the
                                              first user_signed_up event at or before now;
                                              a profile that never sent one (imported,
                                              legacy) counts from when it was first seen
    last_seen: {within: 30d} | {not_within: 30d}   never seen counts as not within
    event: {name: order_placed, within: 30d, at_least: 3,
            where: {category: {eq: beauty}, total: {gte: 200}}}
        performed the event N times (at_least | at_most | exactly, default at_least 1),
        within a window or ever, with typed property filters; or instead of a count,
        sum: {property: total, gte: 2000} (the sum of a numeric property; none sums to 0)
    coupon: {expiring_within: 48h}            holds an unused coupon expiring that soon
    open_cart: {within: 7d}                   a cart_updated not followed by an order_placed
                                              of the same cart_id (window optional)
    subscribed: {channel: sms, topic: marketing}   not unsubscribed there (any channel kind)
    reachable: sms | email | push             has an address for the channel kind (a phone,
                                              an email, a push token: see kinds/)

Comparisons are two-valued: a missing trait, or one of another JSON type than the operator
needs, simply does not match (so ``not`` of it does). A ``timestamp`` trait is text holding
an ISO-8601 date and time with an explicit offset (``2026-06-18T10:00:00+08:00``, or ``Z``);
any other text, an impossible date included, is not a timestamp. Instants compare to the
millisecond on SQLite; integers beyond 2**53 compare as floats. Relative times are evaluated against
the ``now`` given to the evaluator, so sweeps and tests are reproducible.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from journeys.durations import parse_duration
from kinds import names

ValueType = Literal["string", "number", "bool", "timestamp"]
COMPARE_OPS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "exists", "contains", "starts_with")
OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("eq", "ne", "in", "gt", "gte", "lt", "lte", "exists", "contains", "starts_with"),
    "number": ("eq", "ne", "in", "gt", "gte", "lt", "lte", "exists"),
    "bool": ("eq", "ne", "exists"),
    "timestamp": ("eq", "ne", "gt", "gte", "lt", "lte", "exists"),
}
TOPICS = ("marketing", "transactional")
# Trait and property names end up inside JSON paths: letters, digits, '_' (any script).
NAME = re.compile(r"^[^\W\d]\w{0,63}$")


class AudienceError(ValueError):
    """A rule that cannot be used; ``path`` locates the problem inside the rule."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class Compare:
    """``<value> <op> <operand>`` with the value read as ``type``."""

    op: str
    type: ValueType
    operand: Any = None  # a scalar, a list for `in`, a bool for `exists`


@dataclass(frozen=True)
class All:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    rule: Rule


@dataclass(frozen=True)
class Trait:
    name: str
    compare: Compare


@dataclass(frozen=True)
class Field:
    """A profile column: ``member_tier``, ``locale`` or ``timezone``."""

    column: Literal["member_tier", "locale", "timezone"]
    compare: Compare


@dataclass(frozen=True)
class Tag:
    tag: str


@dataclass(frozen=True)
class SignedUp:
    within: timedelta | None = None
    before: timedelta | None = None


@dataclass(frozen=True)
class LastSeen:
    within: timedelta | None = None
    not_within: timedelta | None = None


@dataclass(frozen=True)
class PropertyFilter:
    name: str
    compare: Compare


@dataclass(frozen=True)
class Total:
    """``sum: {property: total, gte: 2000}`` — the sum of a numeric property compared."""

    property: str
    op: Literal["gt", "gte", "lt", "lte"]
    value: float


@dataclass(frozen=True)
class EventCount:
    name: str
    count_op: Literal["at_least", "at_most", "exactly"]
    count: int
    within: timedelta | None = None
    where: tuple[PropertyFilter, ...] = ()
    total: Total | None = None


@dataclass(frozen=True)
class CouponExpiring:
    within: timedelta


@dataclass(frozen=True)
class OpenCart:
    within: timedelta | None = None


@dataclass(frozen=True)
class Subscribed:
    channel: str
    topic: str = "marketing"


@dataclass(frozen=True)
class Reachable:
    channel: str


Rule = (
    All
    | AnyOf
    | Not
    | Trait
    | Field
    | Tag
    | SignedUp
    | LastSeen
    | EventCount
    | CouponExpiring
    | OpenCart
    | Subscribed
    | Reachable
)


def parse_rule(data: Any, path: str = "rule") -> Rule:
    """Parse a rule (as loaded from YAML/JSON) into the tree, or raise :class:`AudienceError`."""
    if not isinstance(data, dict) or len(data) != 1:
        raise AudienceError(
            path, "a rule is a mapping with exactly one key, e.g. {tag: 母婴人群} or {all: [...]}"
        )
    ((key, body),) = data.items()
    sub = f"{path}.{key}"
    match key:
        case "all" | "any":
            if not isinstance(body, list):
                raise AudienceError(sub, f"`{key}` takes a list of rules")
            rules = tuple(parse_rule(r, f"{sub}[{i}]") for i, r in enumerate(body))
            return All(rules) if key == "all" else AnyOf(rules)
        case "not":
            return Not(parse_rule(body, sub))
        case "trait":
            body = _mapping(body, sub)
            name = _name(body.pop("name", None), f"{sub}.name")
            return Trait(name, _compare(body, sub))
        case "tier" | "locale" | "timezone":
            column = "member_tier" if key == "tier" else key
            body = {"eq": body} if isinstance(body, str) else _mapping(body, sub)
            compare = _compare(body | {"type": "string"}, sub)
            return Field(column, compare)  # type: ignore[arg-type]
        case "tag":
            if not isinstance(body, str) or not body:
                raise AudienceError(sub, "`tag` takes the tag's name, e.g. tag: 母婴人群")
            return Tag(body)
        case "signed_up":
            windows = _windows(body, sub, ("within", "before"))
            return SignedUp(**windows)
        case "last_seen":
            windows = _windows(body, sub, ("within", "not_within"))
            return LastSeen(**windows)
        case "event":
            return _event(body, sub)
        case "coupon":
            body = _mapping(body, sub)
            _only(body, sub, {"expiring_within"})
            if "expiring_within" not in body:
                raise AudienceError(sub, "`coupon` needs `expiring_within`, e.g. 48h")
            return CouponExpiring(_duration(body["expiring_within"], f"{sub}.expiring_within"))
        case "open_cart":
            if body is True or body is None:
                return OpenCart()
            body = _mapping(body, sub)
            _only(body, sub, {"within"})
            return OpenCart(
                _duration(body["within"], f"{sub}.within") if "within" in body else None
            )
        case "subscribed":
            body = _mapping(body, sub)
            _only(body, sub, {"channel", "topic"})
            channel = _choice(body.get("channel"), names(), f"{sub}.channel")
            topic = _choice(body.get("topic", "marketing"), TOPICS, f"{sub}.topic")
            return Subscribed(channel, topic)
        case "reachable":
            return Reachable(_choice(body, names(), sub))
    raise AudienceError(
        sub,
        f"unknown condition {key!r}; use one of all, any, not, trait, tag, tier, locale, "
        "timezone, signed_up, last_seen, event, coupon, open_cart, subscribed, reachable",
    )


def _mapping(body: Any, path: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AudienceError(path, f"expected a mapping, got {type(body).__name__}")
    return dict(body)


def _only(body: dict[str, Any], path: str, allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise AudienceError(f"{path}.{extra[0]}", f"unknown field; allowed: {sorted(allowed)}")


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise AudienceError(path, "a name of letters, digits and '_' is required, e.g. city")
    return value


def _choice(value: Any, options: tuple[str, ...], path: str) -> str:
    if value not in options:
        raise AudienceError(path, f"must be one of {', '.join(options)}, not {value!r}")
    return str(value)


def _duration(value: Any, path: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise AudienceError(path, str(exc)) from None


def _windows(body: Any, path: str, names: tuple[str, str]) -> dict[str, timedelta]:
    body = _mapping(body, path)
    _only(body, path, set(names))
    if len(body) != 1:
        raise AudienceError(path, f"give exactly one of {names[0]} or {names[1]}, e.g. 30d")
    ((key, value),) = body.items()
    return {key: _duration(value, f"{path}.{key}")}


def _event(body: Any, path: str) -> EventCount:
    body = _mapping(body, path)
    _only(body, path, {"name", "within", "at_least", "at_most", "exactly", "where", "sum"})
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise AudienceError(f"{path}.name", "the event's name is required, e.g. order_placed")
    counts = [k for k in ("at_least", "at_most", "exactly") if k in body]
    if len(counts) > 1:
        raise AudienceError(path, "give at most one of at_least, at_most, exactly")
    count_op = counts[0] if counts else "at_least"
    count = body.get(count_op, 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise AudienceError(f"{path}.{count_op}", "must be a whole number ≥ 0")
    within = _duration(body["within"], f"{path}.within") if "within" in body else None
    where = _mapping(body.get("where", {}), f"{path}.where")
    filters = tuple(
        PropertyFilter(
            _name(prop, f"{path}.where.{prop}"),
            _compare(_mapping(spec, f"{path}.where.{prop}"), f"{path}.where.{prop}"),
        )
        for prop, spec in where.items()
    )
    total = _total(body["sum"], f"{path}.sum") if "sum" in body else None
    if total is not None and counts:
        raise AudienceError(path, "give either a count (at_least, ...) or `sum`, not both")
    return EventCount(name, count_op, count, within, filters, total)  # type: ignore[arg-type]


def _total(body: Any, path: str) -> Total:
    body = _mapping(body, path)
    prop = _name(body.pop("property", None), f"{path}.property")
    ops = [k for k in body if k in ("gt", "gte", "lt", "lte")]
    if len(ops) != 1 or len(body) != 1:
        raise AudienceError(path, "`sum` takes `property` and one of gt, gte, lt, lte")
    value = body[ops[0]]
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise AudienceError(f"{path}.{ops[0]}", f"expected a number, got {value!r}")
    return Total(prop, ops[0], float(value))  # type: ignore[arg-type]


def _compare(body: dict[str, Any], path: str) -> Compare:
    body = dict(body)
    declared = body.pop("type", None)
    ops = [k for k in body if k in COMPARE_OPS]
    unknown = [k for k in body if k not in COMPARE_OPS]
    if unknown:
        raise AudienceError(
            f"{path}.{unknown[0]}", f"unknown operator; use one of {', '.join(COMPARE_OPS)}"
        )
    if len(ops) != 1:
        raise AudienceError(path, f"give exactly one operator ({', '.join(COMPARE_OPS)})")
    op = ops[0]
    operand = body[op]
    opath = f"{path}.{op}"
    if op == "exists":
        if not isinstance(operand, bool):
            raise AudienceError(opath, "`exists` takes true or false")
        vtype = declared or "string"
        if vtype not in OPS_BY_TYPE:
            raise AudienceError(f"{path}.type", f"unknown type {vtype!r}")
        return Compare("exists", vtype, operand)  # type: ignore[arg-type]
    sample = operand
    if op == "in":
        if not isinstance(operand, list) or not operand:
            raise AudienceError(opath, "`in` takes a non-empty list of values")
        sample = operand[0]
    vtype = declared or _type_of(sample, opath)
    if vtype not in OPS_BY_TYPE:
        raise AudienceError(f"{path}.type", "type must be string, number, bool or timestamp")
    if op not in OPS_BY_TYPE[vtype]:
        raise AudienceError(opath, f"`{op}` does not apply to a {vtype}")
    values = operand if op == "in" else [operand]
    converted = [_convert(v, vtype, opath) for v in values]
    return Compare(op, vtype, tuple(converted) if op == "in" else converted[0])


def _type_of(value: Any, path: str) -> ValueType:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, str):
        return "string"
    raise AudienceError(path, f"cannot compare with {type(value).__name__}; give a plain value")


def _convert(value: Any, vtype: str, path: str) -> Any:
    if vtype == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AudienceError(path, f"expected a number, got {value!r}")
        if math.isnan(value):
            raise AudienceError(path, f"expected a number, got {value!r}")
        return float(value)
    if vtype == "bool":
        if not isinstance(value, bool):
            raise AudienceError(path, f"expected true or false, got {value!r}")
        return value
    if vtype == "timestamp":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise AudienceError(path, f"expected an ISO-8601 instant, got {value!r}") from None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise AudienceError(
                path, "expected an ISO-8601 instant with its offset, e.g. 2026-06-18T00:00:00+08:00"
            )
        return value
    if not isinstance(value, str):
        raise AudienceError(path, f"expected text, got {value!r}")
    return value
