"""Audiences as marketers write them (YAML), and the three ways to ask one.

- :meth:`Audience.contains` — is this user in it now? (journey entry, ``branch``)
- :meth:`Audience.count` — how many now? (previews, before a broadcast)
- :meth:`Audience.members` — who, a keyset page at a time (sweeps, broadcasts)

None of them loads the population into Python. Each rule is compiled once per dialect (the
statements are cached, with ``now`` as parameters), so asking again costs only the query.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import ColumnElement, Connection, Select, bindparam, func, null, select
from sqlalchemy.orm import Session

from audiences.compiler import Compiler, instants
from audiences.describe import describe, describe_signed_up
from audiences.rules import All, AnyOf, AudienceError, Rule, SignedUp, parse_rule
from audiences.signups import first_signup
from store.models import User
from store.types import UTCDateTime

SHIPPED = Path(__file__).parent
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Audience:
    id: str
    name: str
    rule: Rule
    description: str = ""

    def condition(
        self, session: Session, now: datetime, *, correlated: bool
    ) -> ColumnElement[bool]:
        dialect = session.get_bind().dialect.name
        return Compiler(dialect, now, correlated=correlated).compile(self.rule)

    def contains(self, session: Session, *, user_id: str, now: datetime) -> bool:
        """Whether ``user_id`` is in the audience at ``now`` (one indexed query)."""
        asked = _statements(self.rule, session.get_bind().dialect.name)
        params = {"user_id": user_id, **instants(asked.offsets, now)}
        return _connection(session).execute(asked.contains, params).first() is not None

    def count(self, session: Session, *, now: datetime) -> int:
        """How many users are in the audience at ``now``."""
        asked = _statements(self.rule, session.get_bind().dialect.name)
        return _connection(session).scalar(asked.count, instants(asked.offsets, now)) or 0

    def members(
        self, session: Session, *, now: datetime, after: str | None = None, limit: int = 1000
    ) -> list[str]:
        """One page of member ids in id order, after the cursor ``after`` (keyset paging)."""
        asked = _statements(self.rule, session.get_bind().dialect.name)
        params: dict[str, Any] = {"limit": limit, **instants(asked.offsets, now)}
        conn = _connection(session)
        if after is None:
            return list(conn.scalars(asked.first_page, params))
        return list(conn.scalars(asked.next_page, params | {"after": after}))

    def explain(
        self, session: Session, *, user_ids: list[str], now: datetime
    ) -> dict[str, list[tuple[str, bool]]]:
        """For each user, each top-level part of the rule and whether it holds. A
        ``signed_up`` part also says which instant it read for that user (their first
        ``user_signed_up``, or when they were first seen)."""
        parts = self.rule.rules if isinstance(self.rule, All | AnyOf) else (self.rule,)
        compiler = Compiler(session.get_bind().dialect.name, now, correlated=True)
        columns = [compiler.compile(p).label(f"p{i}") for i, p in enumerate(parts)]
        signups = (
            first_signup(bindparam("explain_now", now, type_=UTCDateTime()))
            if any(isinstance(p, SignedUp) for p in parts)
            else null()
        )
        rows = session.execute(
            select(User.id, User.created_at, signups, *columns).where(User.id.in_(user_ids))
        )
        texts = [describe(p) for p in parts]
        why: dict[str, list[tuple[str, bool]]] = {}
        for user_id, first_seen, signed_up_at, *held in rows:
            why[user_id] = [
                (
                    describe_signed_up(
                        part, signed_up_at=signed_up_at, first_seen=first_seen, now=now
                    )
                    if isinstance(part, SignedUp)
                    else text,
                    bool(value),
                )
                for part, text, value in zip(parts, texts, held, strict=True)
            ]
        return why


def _connection(session: Session) -> Connection:
    """The session's connection, its pending changes flushed first as before any ORM query.

    The statements read plain columns, not objects: run by Core, they skip the ORM's
    per-execution set-up (some 0.1 ms a call, which a ``contains`` or a small count notices).
    """
    if session.autoflush:
        session.flush()
    return session.connection()


@dataclass(frozen=True)
class _Statements:
    """One rule's statements for one dialect; ``offsets`` name their instants."""

    contains: Select[Any]
    count: Select[Any]
    first_page: Select[Any]
    next_page: Select[Any]
    offsets: dict[str, timedelta]


# Any instant will do: every one is given again, as a parameter, when a statement runs.
_COMPILED_AT = datetime(2000, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=512)
def _statements(rule: Rule, dialect: str) -> _Statements:
    one = Compiler(dialect, _COMPILED_AT, correlated=True)
    contains = select(User.id).where(User.id == bindparam("user_id"), one.compile(rule))
    population = Compiler(dialect, _COMPILED_AT, correlated=False)
    cond = population.compile(rule)
    ids = population.member_ids(rule)
    if ids is None:
        count = select(func.count()).select_from(User).where(cond)
    else:  # e.g. coupon holders: counted from the coupons alone
        listed = ids.subquery()
        count = select(func.count(listed.c[0].distinct()))
    page = select(User.id).where(cond).order_by(User.id).limit(bindparam("limit"))
    return _Statements(
        contains,
        count,
        page,
        page.where(User.id > bindparam("after")),
        one.offsets | population.offsets,
    )


def audience_from_data(data: Any, *, source: str = "<audience>") -> Audience:
    """Build an :class:`Audience` from a mapping (``id``, ``name``, ``rule``, ...) or a bare
    rule; errors name the source and the path inside the rule."""
    if isinstance(data, dict) and "rule" in data:
        extra = sorted(set(data) - {"id", "name", "description", "rule"})
        if extra:
            raise AudienceError(
                f"{source}: {extra[0]}", "unknown field; use id, name, description, rule"
            )
        audience_id = data.get("id", "adhoc")
        if not isinstance(audience_id, str) or not ID_PATTERN.match(audience_id):
            raise AudienceError(
                f"{source}: id", "lower-case letters, digits and '_', e.g. dormant_30d"
            )
        rule = parse_rule(data["rule"], f"{source}: rule")
        return Audience(
            audience_id, str(data.get("name", audience_id)), rule, str(data.get("description", ""))
        )
    return Audience("adhoc", "ad-hoc rule", parse_rule(data, f"{source}: rule"))


def load_audience(path: Path | str) -> Audience:
    """Read one audience file (YAML or JSON)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AudienceError(str(path), f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AudienceError(str(path), f"not valid YAML/JSON: {exc}") from None
    return audience_from_data(data, source=str(path))


def parse_audience_text(text: str) -> Audience:
    """An audience or bare rule given inline (YAML or JSON text)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AudienceError("<inline>", f"not valid YAML/JSON: {exc}") from None
    return audience_from_data(data, source="<inline>")


def shipped_audiences() -> dict[str, Audience]:
    """The audiences that ship with the product, by id."""
    loaded = [load_audience(p) for p in sorted(SHIPPED.glob("*.yaml"))]
    return {a.id: a for a in loaded}
