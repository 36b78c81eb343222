"""Compile an audience rule into one SQLAlchemy boolean over the ``users`` table.

The compiled SQL is the only evaluator in production. Every value from a rule is a bound
parameter; JSON paths are built from validated names only. Two shapes for behaviour
conditions, chosen by ``correlated``:

- ``True`` (for ``contains``: one user) — correlated ``EXISTS`` / ``count(*)`` subqueries that
  probe the events index for that user only;
- ``False`` (for ``count`` / ``members``: the population) — ``users.id IN (SELECT user_id …
  GROUP BY user_id HAVING …)`` semi-joins, one pass over the matching events.

Event conditions side by side under one ``any``/``all`` that read the same rows (same event,
window and property filters) are asked together: one ``GROUP BY user_id HAVING c1 OR c2``
over those rows, or one correlated aggregate, instead of one subquery each.

Comparisons are two-valued (``coalesce(…, false)``), matching the rule language's promise
that a missing or differently typed value does not match.

On SQLite a JSON member is read with ``json_extract``, which does not tell a string from an
array (both text) or ``true`` from ``1``; its JSON type is asked of ``json_type``, a second
lookup in the properties. A comparison asks the value first and the type only of rows where
the value matched; a sum reads the member once, as JSON text (``->``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

import sqlalchemy as sa
from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true

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
from audiences.signups import signed_up
from audiences.sql_values import _SQLITE_ARROW, ValueSql, _path
from kinds import Address, DeviceTokens, ProfileColumn, ProfileTrait
from kinds import kind as channel_kind
from store.models import Consent, Coupon, Event, PushToken, User
from store.types import UTCDateTime


class Compiler(ValueSql):
    """Compiles rules for one dialect (``sqlite`` or ``postgresql``) at one ``now``."""

    def __init__(
        self, dialect: str, now: datetime, *, correlated: bool, sqlite_arrow: bool | None = None
    ):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.dialect = dialect
        # Whether SQLite has `->` (default: whether the linked library has it).
        self.sqlite_arrow = _SQLITE_ARROW if sqlite_arrow is None else sqlite_arrow
        self.now = now.astimezone(UTC)
        self.correlated = correlated
        # The parameters holding instants relative to now, by name: a compiled statement
        # serves any other now when given :func:`instants` for it.
        self.offsets: dict[str, timedelta] = {}

    def compile(self, rule: Rule) -> ColumnElement[bool]:
        match rule:
            case All(rules):
                return and_(true(), *(self._part(p, any_=False) for p in self._together(rules)))
            case AnyOf(rules):
                return self._any(rules)
            case Not(inner):
                return not_(self.compile(inner))
            case Trait(name, compare):
                return self._compare_json(User.traits, name, compare)
            case Field(column, compare):
                return self._compare(getattr(User, column), compare)
            case Tag(tag):
                return self._has_tag(tag)
            case SignedUp():
                return signed_up(rule, self._at, correlated=self.correlated)
            case LastSeen(within, not_within):
                if within is not None:
                    seen = User.last_seen_at
                    return sa.func.coalesce(
                        and_(seen >= self._at(-within), seen <= self._at()), false()
                    )
                assert not_within is not None
                return or_(User.last_seen_at.is_(None), User.last_seen_at < self._at(-not_within))
            case EventCount():
                return self._event_count((rule,))
            case CouponExpiring(within):
                return sa.exists(
                    select(1).where(Coupon.user_id == User.id, *self._expiring(within))
                )
            case OpenCart(within):
                return self._open_cart(within)
            case Subscribed(channel, topic):
                return ~sa.exists(
                    select(1).where(
                        Consent.user_id == User.id,
                        Consent.channel == channel,
                        Consent.topic == topic,
                        Consent.status == "unsubscribed",
                    )
                )
            case Reachable(channel):
                return self._has_address(channel_kind(channel).address)
        raise TypeError(f"unknown rule node {rule!r}")

    def member_ids(self, rule: Rule) -> Any:
        """The members as a list of ids read without the ``users`` table, or ``None`` when
        the rule needs it. Possible for conditions on rows that always belong to an existing
        user (a foreign key, deleted with the user): coupons and push tokens. Ids may repeat."""
        match rule:
            case CouponExpiring(within):
                return select(Coupon.user_id).where(*self._expiring(within))
            case Reachable(channel) if isinstance(channel_kind(channel).address, DeviceTokens):
                return select(PushToken.user_id)
            case AnyOf(rules) if rules:
                lists = [self.member_ids(r) for r in rules]
                if all(ids is not None for ids in lists):
                    return sa.union_all(*lists) if len(lists) > 1 else lists[0]
        return None

    def _has_address(self, address: Address) -> ColumnElement[bool]:
        """Whether the user has an address where a channel kind finds it (its ``reachable``)."""
        match address:
            case ProfileColumn(name):
                column = User.__table__.c[name]
                return and_(column.is_not(None), column != "")
            case ProfileTrait(name):
                return func.coalesce(self._json(User.traits, name, "string") != "", false())
            case DeviceTokens():
                return sa.exists(select(1).where(PushToken.user_id == User.id))
            case _:
                assert_never(address)

    def _at(self, offset: timedelta = timedelta(0)) -> Any:
        """``now + offset`` as a named parameter."""
        micros = offset // timedelta(microseconds=1)
        key = f"now_{'m' if micros < 0 else 'p'}{abs(micros)}"
        self.offsets[key] = offset
        return sa.bindparam(key, self.now + offset, type_=UTCDateTime())

    def _expiring(self, within: timedelta) -> list[ColumnElement[bool]]:
        """Coupons unused and expiring within ``within`` from now."""
        return [
            Coupon.redeemed_at.is_(None),
            Coupon.expires_at > self._at(),
            Coupon.expires_at <= self._at(within),
        ]

    # -- behaviour ---------------------------------------------------------------------

    def _event_filters(self, cond: EventCount) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = [
            Event.event == cond.name,
            Event.timestamp <= self._at(),
        ]
        if cond.within is not None:
            filters.append(Event.timestamp >= self._at(-cond.within))
        for prop in cond.where:
            filters.append(
                self._compare_json(Event.properties, prop.name, prop.compare, filter_only=True)
            )
        return filters

    def _amount(self, cond: EventCount) -> Any:
        assert cond.total is not None
        name = cond.total.property
        if self.dialect == "postgresql":
            return func.coalesce(func.sum(self._json(Event.properties, name, "number")), 0.0)
        # SQLite's total() sums as a float (sum() raises on integer overflow), and is 0.0
        # without rows.
        if not self.sqlite_arrow:
            return func.total(self._json(Event.properties, name, "number"))
        # The member as JSON text: a number's text is that number, and any other JSON value
        # (a string's quote, true, false, null, [ or {) reads as 0 in arithmetic, adding
        # nothing. A missing member is NULL, which total() skips.
        member = Event.properties.op("->", return_type=sa.String)(
            sa.bindparam(None, _path(name), type_=sa.String)
        )
        return func.total(member + sa.literal(0, sa.Integer))

    def _holds(self, cond: EventCount, measure: Any) -> Any:
        """``measure`` (a count or a sum) compared as ``cond`` says."""
        if cond.total is not None:
            limit = cond.total.value
            return {
                "gt": measure > limit,
                "gte": measure >= limit,
                "lt": measure < limit,
                "lte": measure <= limit,
            }[cond.total.op]
        n = cond.count
        return {"at_least": measure >= n, "at_most": measure <= n, "exactly": measure == n}[
            cond.count_op
        ]

    def _holds_at_zero(self, cond: EventCount) -> bool:
        """Whether a user without any matching event is in (``exactly: 0``, ``at_most``,
        ``sum: {lt: 100}``): such conditions cannot be a list of the users who have events."""
        if cond.total is not None:
            return bool(self._holds(cond, 0.0))
        return bool(self._holds(cond, 0))

    def _together(self, rules: Sequence[Rule]) -> list[Rule | Together]:
        """``rules`` with the event conditions that read the same rows collected into one
        :class:`Together` (at the place of the first). In the population shape only those
        that do not hold at zero are collected: the others stay per-user probes (anti-joins)."""
        groups: dict[tuple[Any, ...], list[EventCount]] = {}
        for rule in rules:
            if isinstance(rule, EventCount) and not self._always(rule):
                if self.correlated or not self._holds_at_zero(rule):
                    groups.setdefault(_rows_key(rule), []).append(rule)
        parts: list[Rule | Together] = []
        placed: set[tuple[Any, ...]] = set()
        for rule in rules:
            key = _rows_key(rule) if isinstance(rule, EventCount) else ()
            group = groups.get(key, [])
            if len(group) < 2 or rule not in group:
                parts.append(rule)
            elif key not in placed:
                placed.add(key)
                parts.append(Together(tuple(group)))
        return parts

    def _part(self, part: Rule | Together, *, any_: bool) -> ColumnElement[bool]:
        if not isinstance(part, Together):
            return self.compile(part)
        return self._event_count(part.conds, any_=any_)

    @staticmethod
    def _always(cond: EventCount) -> bool:
        return cond.total is None and cond.count_op == "at_least" and cond.count == 0

    @staticmethod
    def _exists(cond: EventCount) -> bool:
        """``at least once``: a matching row is enough, nothing to count."""
        return cond.total is None and cond.count_op == "at_least" and cond.count == 1

    def _measured(self, cond: EventCount) -> Any:
        measure = self._amount(cond) if cond.total is not None else func.count()
        return self._holds(cond, measure)

    def _event_ids(self, conds: Sequence[EventCount], *, any_: bool = True) -> Any:
        """The users for whom ``conds`` hold (any of them, or all with ``any_=False``), as one
        pass over the rows they share. Only for conditions that do not hold at zero: a user
        without rows is in none of them, so grouping the rows that exist is exact."""
        base = select(Event.user_id).where(
            Event.user_id.is_not(None), *self._event_filters(conds[0])
        )
        if any_ and any(self._exists(c) for c in conds):
            return base  # anyone with a row is in
        # Under `all`, "at least once" adds nothing to conditions that need rows anyway.
        held = [self._measured(c) for c in conds if not self._exists(c)]
        if not held:
            return base
        return base.group_by(Event.user_id).having(or_(*held) if any_ else and_(*held))

    def _event_count(
        self, conds: Sequence[EventCount], *, any_: bool = True
    ) -> ColumnElement[bool]:
        """``conds`` (one, or several over the same rows) for the user of the outer query."""
        if len(conds) == 1 and self._always(conds[0]):
            return true()
        if not self.correlated and not any(self._holds_at_zero(c) for c in conds):
            return User.id.in_(self._event_ids(conds, any_=any_))
        # One user (contains), or a condition that also holds without events: probe this
        # user's events. "exactly 0" becomes NOT EXISTS, an anti-join the planner handles.
        filters = [Event.user_id == User.id, *self._event_filters(conds[0])]
        if len(conds) == 1:
            cond = conds[0]
            if cond.total is None and cond.count_op == "exactly" and cond.count == 0:
                return ~sa.exists(select(1).where(*filters))
            if self._exists(cond):
                return sa.exists(select(1).where(*filters))
            measure = self._amount(cond) if cond.total is not None else func.count()
            return self._holds(cond, select(measure).where(*filters).scalar_subquery())  # type: ignore[no-any-return]
        # An aggregate without GROUP BY is one row even without events (count 0, sum 0),
        # so conditions that hold at zero are exact here too.
        held = [self._measured(c) for c in conds]
        combined = or_(*held) if any_ else and_(*held)
        return select(combined).where(*filters).scalar_subquery()  # type: ignore[return-value]

    def _any(self, rules: tuple[Rule, ...]) -> ColumnElement[bool]:
        """``any``: in the population shape, a rule with behaviour conditions becomes one
        ``users.id IN (… UNION …)`` (an OR of IN-lists would be re-checked per user)."""
        parts = self._together(rules)
        if self.correlated or not any(self._is_id_list(p) for p in parts):
            return or_(false(), *(self._part(p, any_=True) for p in parts))
        lists = [
            self._event_ids(_conds(p))
            if self._is_id_list(p)
            else select(User.id).where(self._part(p, any_=True)).correlate(None)
            for p in parts
        ]
        return User.id.in_(sa.union(*lists)) if len(lists) > 1 else User.id.in_(lists[0])

    def _is_id_list(self, part: Rule | Together) -> bool:
        """Event conditions answered by the list of users who have matching rows."""
        if isinstance(part, Together):
            return True
        return (
            isinstance(part, EventCount)
            and not self._always(part)
            and not self._holds_at_zero(part)
        )

    def _open_cart(self, within: Any) -> ColumnElement[bool]:
        cart = sa.orm.aliased(Event)
        order = sa.orm.aliased(Event)
        has_cart = Compare("exists", "string", True)
        ordered = sa.exists(
            select(1).where(
                order.user_id == cart.user_id,
                order.event == "order_placed",
                order.timestamp >= cart.timestamp,
                order.timestamp <= self._at(),
                *self._same_string(order.properties, cart.properties, "cart_id"),
            )
        )
        filters = [
            cart.user_id == User.id,
            cart.event == "cart_updated",
            cart.timestamp <= self._at(),
            self._compare_json(cart.properties, "cart_id", has_cart, filter_only=True),
            ~ordered,
        ]
        if within is not None:
            filters.append(cart.timestamp >= self._at(-within))
        return sa.exists(select(1).where(*filters))


def instants(offsets: dict[str, timedelta], now: datetime) -> dict[str, datetime]:
    """The values of a compiler's ``offsets`` parameters at ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return {key: now + offset for key, offset in offsets.items()}


@dataclass(frozen=True)
class Together:
    """Event conditions side by side under one ``any`` / ``all`` that read the same rows."""

    conds: tuple[EventCount, ...]


def _rows_key(cond: EventCount) -> tuple[Any, ...]:
    """Conditions with equal keys count or sum over exactly the same event rows."""
    return (cond.name, cond.within, cond.where)


def _conds(part: Rule | Together) -> tuple[EventCount, ...]:
    if isinstance(part, Together):
        return part.conds
    assert isinstance(part, EventCount)
    return (part,)
