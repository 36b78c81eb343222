"""Property filters on events (``where: {total: {gte: 50}}``), evaluated in pure Python.

Used by the workflow (goal, ``wait_for``, trigger filters) and the router, so it must stay
deterministic and free of I/O. Two-valued like audience rules: a missing property, or one of
another type than the operator needs, does not match.
"""

from __future__ import annotations

from typing import Any

OPS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "exists")


def check_filter(where: dict[str, Any]) -> None:
    """Raise ValueError naming the property if ``where`` is not ``{name: {op: value}}``."""
    for name, spec in where.items():
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ValueError(f"{name}: give one operator, e.g. {{gte: 50}} or {{eq: beauty}}")
        ((op, value),) = spec.items()
        if op not in OPS:
            raise ValueError(f"{name}: unknown operator {op!r}; use one of {', '.join(OPS)}")
        if op == "in" and (not isinstance(value, list) or not value):
            raise ValueError(f"{name}: `in` takes a non-empty list")
        if op == "exists" and not isinstance(value, bool):
            raise ValueError(f"{name}: `exists` takes true or false")


def _same_kind(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b)


def compare(value: Any, op: str, operand: Any) -> bool:
    """``value <op> operand`` with the two-valued rule above."""
    if op == "exists":
        return (value is not None) == operand
    if value is None:
        return False
    if op == "in":
        return any(_same_kind(value, o) and value == o for o in operand)
    if not _same_kind(value, operand):
        return False
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if isinstance(value, bool):
        return False  # no ordering on booleans
    try:
        return {
            "gt": value > operand,
            "gte": value >= operand,
            "lt": value < operand,
            "lte": value <= operand,
        }[op]
    except TypeError:
        return False


def matches(where: dict[str, Any], properties: dict[str, Any]) -> bool:
    """Whether every filter in ``where`` holds for ``properties``."""
    for name, spec in where.items():
        ((op, operand),) = spec.items()
        if not compare(properties.get(name), op, operand):
            return False
    return True
