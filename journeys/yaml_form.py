"""A journey as form fields, and back: its settings as one set of fields, its steps as a
flat list of rows (one per step, nested ones included, each with its path such as
``steps[2].then[0]``), and the builder's edits on them (add, move, delete a step).

Pure: no database, no HTTP. A journey is handled as ``yaml.safe_load`` gives it, valid or
not, so a draft with problems goes through unchanged and validation names them. Each field
is text as a form shows it: a "text" field holds a string as typed (empty: the key is left
out); a "yaml" field holds a value written on one line (``[a, b]``, ``{total: {gte: 50}}``,
``10``). Whatever a form has no field for (a typo, a string where a mapping belongs) is kept
in the row's ``more`` field, as YAML, so ``rows -> journey`` gives back what it was given.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from journeys.models import CONTEXT_OPS, STEP_MODELS, STEP_TYPES
from journeys.yaml_write import NESTED_KEYS, flow

__all__ = [
    "SETTINGS",
    "STEP_FIELDS",
    "FormError",
    "Row",
    "add_step",
    "delete_step",
    "from_form",
    "move_step",
    "new_step",
    "settings_of",
    "steps_of",
    "to_rows",
]

# (dotted key in the journey, kind): the settings a builder shows, in order.
SETTINGS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("name", "text"),
    ("description", "text"),
    ("trigger.event", "text"),
    ("trigger.where", "yaml"),
    ("trigger.key", "text"),
    ("trigger.on_repeat", "text"),
    ("trigger.schedule.cron", "text"),
    ("trigger.schedule.timezone", "text"),
    ("trigger.schedule.audience", "yaml"),
    ("entry", "yaml"),
    ("goal.event", "yaml"),
    ("goal.within", "text"),
    ("goal.where", "yaml"),
    ("exit_on", "yaml"),
    ("holdout", "yaml"),
    ("re_entry", "text"),
    ("re_entry.after", "text"),
    ("delivery.quiet_hours", "text"),
    ("delivery.on_frequency_cap", "text"),
)
# A step type's fields, after ``id``; a branch's condition is ``condition`` (context or
# audience) with ``context``, ``op`` and ``value``, or ``audience``.
STEP_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "send": (
        ("channel", "text"),
        ("template", "text"),
        ("variants", "yaml"),
        ("fallback", "text"),
        ("fallback_template", "text"),
        ("topic", "text"),
    ),
    "wait": (("duration", "text"),),
    "wait_until": (("at", "text"), ("local_time", "text")),
    "wait_for": (("event", "text"), ("where", "yaml"), ("timeout", "text")),
    "branch": (
        ("condition", "text"),
        ("context", "text"),
        ("op", "text"),
        ("value", "yaml"),
        ("audience", "yaml"),
    ),
    "issue_coupon": (("amount", "yaml"), ("min_spend", "yaml"), ("valid_for", "text")),
    "exit": (),
}
_NESTED = {t: [key for key, _ in m.NESTED] for t, m in zip(STEP_TYPES, STEP_MODELS, strict=True)}
# What a new step of each type starts with (its id is made unique when it is added).
_NEW: dict[str, dict[str, Any]] = {
    "send": {"channel": "sms"},
    "wait": {"duration": "1d"},
    "wait_until": {"local_time": "10:00"},
    "wait_for": {"timeout": "1d"},
    "branch": {},
    "issue_coupon": {"amount": 10, "valid_for": "7d"},
    "exit": {},
}
_PART = re.compile(r"([a-z_]+)\[(\d+)\]")
_MISSING = object()


class FormError(ValueError):
    """A field whose text cannot be read; ``field`` is its form name."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass
class Row:
    """One step as a form shows it."""

    path: str  # "steps[2].then[0]"
    type: str  # as written; "" when the step has none (or not a string)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return self.path.count("[") - 1

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def parse_path(path: str) -> list[tuple[str, int]]:
    """``"steps[2].then[0]"`` -> ``[("steps", 2), ("then", 0)]``.

    Raises:
        ValueError: not a step's path.
    """
    parts = path.split(".")
    found = [_PART.fullmatch(p) for p in parts]
    if not parts or parts[0].split("[")[0] != "steps" or not all(found):
        raise ValueError(f"not a step's path: {path!r}")
    return [(m[1], int(m[2])) for m in found if m]


def _text(value: Any, kind: str) -> str | None:
    """The field's text for ``value``, or None if this kind of field cannot hold it."""
    if kind == "yaml":
        return flow(value)
    return value if isinstance(value, str) else None


def _read(text: str, kind: str, name: str) -> Any:
    if kind == "text":
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormError(name, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None


def _take(data: dict[str, Any], dotted: str, kind: str) -> str | None:
    """Remove the value at ``dotted`` from ``data`` and give its text (None if absent or of
    a kind the field cannot hold); a mapping left empty by it goes too."""
    *outer, last = dotted.split(".")
    parents = [data]
    for key in outer:
        node = parents[-1].get(key, _MISSING)
        if not isinstance(node, dict):
            return None
        parents.append(node)
    if last not in parents[-1]:
        return None
    text = _text(parents[-1][last], kind)
    if text is None:
        return None
    del parents[-1][last]
    for key, parent in zip(reversed(outer), reversed(parents[:-1]), strict=True):
        if parent[key] == {}:
            del parent[key]
    return text


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    *outer, last = dotted.split(".")
    node = data
    for key in outer:
        inner = node.setdefault(key, {})
        if not isinstance(inner, dict):
            return  # kept as written in "more"; validation names it
        node = inner
    node[last] = value


def _more(rest: dict[str, Any]) -> str:
    return flow(rest) if rest else ""


def settings_of(data: dict[str, Any]) -> dict[str, str]:
    """The journey's settings as form fields (``steps`` aside); ``more`` holds the rest."""
    rest = copy.deepcopy({k: v for k, v in data.items() if k != "steps"})
    fields: dict[str, str] = {}
    re_entry = rest.get("re_entry")
    if isinstance(re_entry, dict) and list(re_entry) == ["after"]:
        fields["re_entry"] = "after"
    for name, kind in SETTINGS:
        if name == "re_entry" and "re_entry" in fields:
            continue
        text = _take(rest, name, kind)
        if text is not None:
            fields[name] = text
    fields["more"] = _more(rest)
    return fields


def _condition(step: dict[str, Any], fields: dict[str, str]) -> None:
    cond = step.get("if")
    if not isinstance(cond, dict):
        return
    ops = [k for k in cond if k in CONTEXT_OPS]
    if set(cond) == {"audience"}:
        fields |= {"condition": "audience", "audience": flow(cond["audience"])}
    elif len(cond) == 2 and len(ops) == 1 and isinstance(cond.get("context"), str):
        fields |= {"condition": "context", "context": cond["context"], "op": ops[0]}
        fields["value"] = flow(cond[ops[0]])
    else:
        return
    del step["if"]


def to_rows(steps: list[Any], prefix: str = "steps") -> list[Row]:
    """Every step, nested ones after their parent, as rows in document order."""
    rows: list[Row] = []
    for i, raw in enumerate(steps):
        path = f"{prefix}[{i}]"
        step = copy.deepcopy(raw) if isinstance(raw, dict) else {}
        kind = step.pop("type") if isinstance(step.get("type"), str) else ""
        row = Row(path, kind)
        step_id = _take(step, "id", "text")
        if step_id is not None:
            row.fields["id"] = step_id
        if kind == "branch":
            _condition(step, row.fields)
        for name, field_kind in STEP_FIELDS.get(kind, ()):
            text = _take(step, name, field_kind) if name not in row.fields else None
            if text is not None:
                row.fields[name] = text
        children: list[Row] = []
        for key in _NESTED.get(kind, []):
            nested = step.get(key)
            if isinstance(nested, list) and all(isinstance(s, dict) for s in nested):
                children += to_rows(nested, f"{path}.{key}")
                del step[key]
        if not isinstance(raw, dict):
            step = {"": raw}  # not a mapping: shown as is, and validation says so
        row.fields["more"] = _more(step)
        rows += [row, *children]
    return rows


def steps_of(data: dict[str, Any]) -> list[Any]:
    steps = data.get("steps")
    return steps if isinstance(steps, list) else []


def _step_from(row: Row) -> Any:
    more = _read(row.get("more"), "yaml", f"{row.path}.more") or {}
    if not isinstance(more, dict):
        raise FormError(f"{row.path}.more", "write the other fields as a mapping {key: value}")
    if "" in more:
        return more[""]
    step: dict[str, Any] = {}
    if row.get("id"):
        step["id"] = row.get("id")
    if row.type:
        step["type"] = row.type
    kinds = dict(STEP_FIELDS.get(row.type, ()))
    for name, kind in kinds.items():
        if name in ("condition", "context", "op", "value", "audience"):
            continue
        if row.get(name):
            step[name] = _read(row.get(name), kind, f"{row.path}.{name}")
    if row.type == "branch":
        if row.get("condition") == "audience" and row.get("audience"):
            audience = _read(row.get("audience"), "yaml", f"{row.path}.audience")
            step["if"] = {"audience": audience}
        elif row.get("condition") != "audience" and (row.get("context") or row.get("value")):
            value = _read(row.get("value"), "yaml", f"{row.path}.value")
            step["if"] = {"context": row.get("context"), row.get("op") or "eq": value}
    return step | more


def from_form(settings: dict[str, str], rows: list[Row]) -> dict[str, Any]:
    """The journey the fields and rows describe (the inverse of :func:`settings_of` and
    :func:`to_rows`).

    Raises:
        FormError: a field's text cannot be read (not YAML, or ``more`` not a mapping).
    """
    more = _read(settings.get("more", ""), "yaml", "more") or {}
    if not isinstance(more, dict):
        raise FormError("more", "write the other settings as a mapping {key: value}")
    data: dict[str, Any] = {}
    for name, kind in SETTINGS:
        text = settings.get(name, "")
        if name == "re_entry" and text == "after":
            continue
        if text:
            _put(data, name, _read(text, kind, name))
    _merge(data, more)
    data["steps"] = []
    for row in rows:
        try:
            parts = parse_path(row.path)
            steps = _list_at(data, parts[:-1], parts[-1][0])
        except (ValueError, LookupError, TypeError, AttributeError):
            raise FormError(f"{row.path}.id", f"no place for a step at {row.path!r}") from None
        steps.append(_step_from(row))
    return data


def _merge(data: dict[str, Any], more: dict[Any, Any]) -> None:
    """Add what ``more`` holds to ``data``, mapping into mapping."""
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data.setdefault(key, value)


def _list_at(data: dict[str, Any], parents: list[tuple[str, int]], key: str) -> list[Any]:
    node: Any = data
    for name, index in parents:
        node = node[name][index]
    if not isinstance(node.get(key), list):
        node[key] = []
    steps: list[Any] = node[key]
    return steps


def _owner(data: dict[str, Any], path: str) -> tuple[list[Any], int]:
    """The list holding the step at ``path``, and its index there."""
    parts = parse_path(path)
    node: Any = data
    for name, index in parts[:-1]:
        node = node[name][index]
    steps, index = node.get(parts[-1][0]), parts[-1][1]
    if not isinstance(steps, list) or not 0 <= index < len(steps):
        raise ValueError(f"no step at {path!r}")
    return steps, index


def _ids(steps: list[Any]) -> set[str]:
    found: set[str] = set()
    for step in steps:
        if isinstance(step, dict):
            found.add(str(step.get("id")))
            for key in NESTED_KEYS:
                if isinstance(step.get(key), list):
                    found |= _ids(step[key])
    return found


def new_step(data: dict[str, Any], kind: str) -> dict[str, Any]:
    """A step of type ``kind`` with an id no other step has (``wait_2`` ...)."""
    if kind not in _NEW:
        raise ValueError(f"no step type {kind!r}; expected one of {', '.join(STEP_TYPES)}")
    taken = _ids(steps_of(data))
    number = next(n for n in range(1, len(taken) + 2) if f"{kind}_{n}" not in taken)
    return {"id": f"{kind}_{number}", "type": kind, **copy.deepcopy(_NEW[kind])}


def add_step(data: dict[str, Any], where: str, index: int, kind: str) -> str:
    """Insert a new ``kind`` step into the list at ``where`` (``steps``,
    ``steps[3].then``) before ``index``; the new step's path.

    Raises:
        ValueError: no such list, or no such step type.
    """
    *parent, key = where.rsplit(".", 1) if "." in where else [where]
    node: Any = data
    if parent:
        steps, i = _owner(data, parent[0])
        node = steps[i]
    if not isinstance(node, dict):
        raise ValueError(f"no list of steps at {where!r}")
    lists = _NESTED.get(str(node.get("type")), []) if parent else ["steps"]
    if key not in lists:
        raise ValueError(f"no list of steps at {where!r}")
    step = new_step(data, kind)
    if not isinstance(node.get(key), list):
        node[key] = []
    index = max(0, min(index, len(node[key])))
    node[key].insert(index, step)
    return f"{where}[{index}]"


def move_step(data: dict[str, Any], path: str, by: int) -> str:
    """Move the step at ``path`` up (-1) or down (+1) in its list; its new path."""
    steps, index = _owner(data, path)
    to = max(0, min(index + by, len(steps) - 1))
    steps.insert(to, steps.pop(index))
    return f"{path.rsplit('[', 1)[0]}[{to}]"


def delete_step(data: dict[str, Any], path: str) -> None:
    """Remove the step at ``path`` (and the steps nested in it)."""
    steps, index = _owner(data, path)
    del steps[index]
