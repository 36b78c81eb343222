"""How an audience rule reads values in SQL, per dialect: JSON members typed, compared
two-valued, text ordered by code point, tags matched (:class:`ValueSql`, a part of
:class:`audiences.compiler.Compiler`).

On SQLite a JSON member is read with ``json_extract``, which does not tell a string from an
array (both text) or ``true`` from ``1``; its JSON type is asked of ``json_type``, a second
lookup in the properties. A comparison asks the value first and the type only of rows where
the value matched; a sum reads the member once, as JSON text (``->``).
"""

from __future__ import annotations

import operator
import sqlite3
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from audiences.rules import Compare
from store.models import User

# An ISO-8601 instant with an explicit offset: the only text read as a timestamp.
# Text read as an instant: ISO-8601 date and time with an explicit offset ("Z" or "+08:00").
# PostgreSQL: the function lifecycle_timestamptz() (migration 0005) returns NULL for anything
# else, impossible dates included, instead of failing the query. SQLite: the same shape by
# GLOB, and a calendar check, since julianday() rolls 30 February over to 2 March.
_SQLITE_INSTANT_START = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]*"
_SQLITE_INSTANT_ENDS = ("*Z", "*[+-][0-9][0-9]:[0-9][0-9]")


# SQLite's `->` (3.38): a member as JSON text, from which a number is read without a second
# lookup. Older libraries sum the member read by type.
_SQLITE_ARROW = sqlite3.sqlite_version_info >= (3, 38, 0)

# JSON types (json_type) of the values each comparison type reads, on SQLite.
_SQLITE_JSON_TYPES = {"string": ("text",), "number": ("integer", "real"), "bool": ("true", "false")}


_OPERATORS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


class ValueSql:
    """The value readers of a compiler for one ``dialect``."""

    dialect: str
    sqlite_arrow: bool

    # -- values ------------------------------------------------------------------------

    def _json(self, column: Any, name: str, vtype: str) -> ColumnElement[Any]:
        """The JSON member ``name`` of ``column`` as a typed SQL value, NULL if of another
        JSON type (so comparisons never raise on PostgreSQL)."""
        if self.dialect == "postgresql":
            member = column[name]
            kind = func.jsonb_typeof(member)
            text = column[name].as_string()
            if vtype == "string":
                return sa.case((kind == "string", text))
            if vtype == "number":
                return sa.case((kind == "number", sa.cast(text, sa.Float)))
            if vtype == "bool":
                return sa.case((kind == "boolean", sa.cast(text, sa.Boolean)))
            instant = func.lifecycle_timestamptz(text, type_=sa.DateTime(timezone=True))
            return sa.case((kind == "string", instant))
        path = _path(name)
        kind = func.json_type(column, path)
        value = func.json_extract(column, path)
        if vtype == "string":
            return sa.case((kind == "text", value))
        if vtype == "number":
            return sa.case((kind.in_(["integer", "real"]), value))
        if vtype == "bool":
            return sa.case((kind == "true", 1), (kind == "false", 0))
        shaped = and_(
            value.op("GLOB")(_SQLITE_INSTANT_START),
            or_(*(value.op("GLOB")(g) for g in _SQLITE_INSTANT_ENDS)),
            # A real calendar date and clock time: julianday() would roll them over.
            func.strftime("%Y-%m-%d %H:%M", func.julianday(func.substr(value, 1, 16)))
            == func.replace(func.substr(value, 1, 16), "T", " "),
        )
        return sa.case((and_(kind == "text", shaped), func.julianday(value)))

    def _sqlite_member(self, column: Any, name: str, vtype: str) -> tuple[Any, Any]:
        """SQLite: the member ``name`` of ``column`` as ``json_extract`` reads it (any type),
        and whether its JSON type is the one ``vtype`` reads (NULL when it is missing)."""
        path = _path(name)
        kind = func.json_type(column, path)
        types = _SQLITE_JSON_TYPES[vtype]
        is_type = kind == types[0] if len(types) == 1 else kind.in_(types)
        return func.json_extract(column, path), is_type

    def _compare_json(
        self, column: Any, name: str, compare: Compare, *, filter_only: bool = False
    ) -> ColumnElement[bool]:
        """The member ``name`` of ``column`` compared as ``compare`` says (see
        :meth:`_compare`)."""
        if self.dialect == "postgresql" or compare.type == "timestamp":
            value = self._json(column, name, compare.type)
            return self._compare(value, compare, filter_only=filter_only)
        raw, is_type = self._sqlite_member(column, name, compare.type)
        if compare.op == "exists":
            if not compare.operand:
                return not_(func.coalesce(is_type, false()))
            return is_type if filter_only else func.coalesce(is_type, false())
        # The comparison holds of the value read as its type exactly when it holds of the
        # raw value and the type is right: so the type is asked only where the value matched.
        # A raw value that matches is present, so its type is never NULL.
        matched = self._compare(raw, compare, filter_only=True)
        if filter_only:
            return and_(matched, is_type)  # WHERE terms, tested in this order
        return sa.case((matched, is_type), else_=false())

    def _same_string(self, left: Any, right: Any, name: str) -> list[ColumnElement[bool]]:
        """WHERE terms: the member ``name`` is the same string in ``left`` and ``right``."""
        if self.dialect == "postgresql":
            return [self._json(left, name, "string") == self._json(right, name, "string")]
        left_raw, left_is_text = self._sqlite_member(left, name, "string")
        right_raw, right_is_text = self._sqlite_member(right, name, "string")
        return [left_raw == right_raw, left_is_text, right_is_text]

    def _operand(self, value: Any, vtype: str) -> Any:
        if vtype == "timestamp" and self.dialect != "postgresql":
            return func.julianday(value.astimezone(UTC).isoformat())
        if vtype == "bool" and self.dialect != "postgresql":
            return 1 if value else 0
        return value

    def _compare(
        self, value: ColumnElement[Any], compare: Compare, *, filter_only: bool = False
    ) -> ColumnElement[bool]:
        """``value`` compared as ``compare`` says: true or false, never NULL, unless
        ``filter_only`` (a WHERE filter that is never negated, where NULL already means
        false: unwrapped, the planner can estimate how many rows it keeps)."""
        op, vtype, operand = compare.op, compare.type, compare.operand
        if op == "exists":
            return value.is_not(None) if operand else value.is_(None)
        cond: ColumnElement[bool]
        if op == "in":
            cond = value.in_([self._operand(v, vtype) for v in operand])
        elif op == "contains":
            cond = self._position(value, operand) > 0
        elif op == "starts_with":
            cond = func.substr(value, 1, len(operand)) == operand
        else:
            rhs = self._operand(operand, vtype)
            if vtype == "string" and op in ("gt", "gte", "lt", "lte"):
                value = self._bytewise(value)
            cond = _OPERATORS[op](value, rhs)
        return cond if filter_only else func.coalesce(cond, false())

    def _bytewise(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """Order text by code point, as SQLite does, not by the database's locale."""
        return value.collate("C") if self.dialect == "postgresql" else value

    def _position(self, haystack: ColumnElement[Any], needle: str) -> ColumnElement[int]:
        if self.dialect == "postgresql":
            return func.strpos(haystack, needle)
        return func.instr(haystack, needle)

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            wanted = sa.bindparam(None, [tag], type_=JSONB)
            # Never NULL (tags is NOT NULL), so no coalesce: wrapped, the planner would guess
            # half the users carry the tag, and a plan priced that high pays for JIT inlining.
            return User.tags.op("@>", return_type=sa.Boolean)(wanted)  # type: ignore[no-any-return]
        each = func.json_each(User.tags).table_valued("value")
        return sa.exists(select(1).select_from(each).where(each.c.value == tag))


def _path(name: str) -> str:
    """The SQLite JSON path of the member ``name`` (a validated name: letters, digits, _)."""
    return f'$."{name}"'
