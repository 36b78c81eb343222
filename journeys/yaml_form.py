"""A journey as form fields, and back: its settings as one set of fields, its steps as a
flat list of rows (one per step, nested ones included, each with its path such as
``steps[2].then[0]``); the builder's edits on them are in :mod:`journeys.yaml_edits`.

Pure: no database, no HTTP. A journey is handled as ``yaml.safe_load`` gives it, valid or
not, so a draft with problems goes through unchanged and validation names them. Each field
is text as a form shows it: a "text" field holds a string as typed (empty: the key is left
out); a "yaml" field holds a value written on one line (``[a, b]``, ``{total: {gte: 50}}``,
``10``). A send step's A/B variants are rows of their own (``variants.0.id``,
``variants.0.template``, ``variants.0.weight``; a row left blank is dropped). Whatever a
form has no field for (a typo, a string where a mapping belongs, variants the rows cannot
hold as written) is kept in the row's ``more`` field, as YAML, so ``rows -> journey`` gives
back what it was given."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

from journeys.models import CONTEXT_OPS
from journeys.yaml_edits import (
    NESTED,
    add_step,
    delete_step,
    list_at,
    move_step,
    new_step,
    parse_path,
    steps_of,
)
from journeys.yaml_write import flow

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
        ("variants", "rows"),
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
# An A/B variant's fields, each a row's ``variants.N.NAME``.
VARIANT_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("template", "text"),
    ("weight", "yaml"),
)
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

    def variants(self) -> list[dict[str, str]]:
        """The step's A/B variants as form rows (``id``, ``template``, ``weight``), in order."""
        found: dict[int, dict[str, str]] = {}
        for key, text in self.fields.items():
            head, index, name = (key.split(".", 2) + ["", ""])[:3]
            if head == "variants" and index.isdigit() and name:
                found.setdefault(int(index), {})[name] = text
        return [found[i] for i in sorted(found)]


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


def _variant_fields(step: dict[str, Any]) -> dict[str, str]:
    """The step's variants as ``variants.N.NAME`` fields, taken from ``step``; none (and
    the variants left for ``more``) when the rows cannot hold them as written."""
    variants = step.get("variants")
    names = dict(VARIANT_FIELDS)
    if not isinstance(variants, list) or not variants:
        return {}
    fields: dict[str, str] = {}
    for i, variant in enumerate(variants):
        if not isinstance(variant, dict) or not variant or not set(variant) <= set(names):
            return {}
        for name, value in variant.items():
            text = _text(value, names[name])
            if not text:  # not a string, or an empty one, in a text field
                return {}
            fields[f"variants.{i}.{name}"] = text
    del step["variants"]
    return fields


def _variants_from(row: Row) -> list[dict[str, Any]]:
    found = []
    for i, typed in enumerate(row.variants()):
        variant = {}
        for name, kind in VARIANT_FIELDS:
            if typed.get(name):
                variant[name] = _read(typed[name], kind, f"{row.path}.variants[{i}].{name}")
        if variant:  # a row left blank is no variant
            found.append(variant)
    return found


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
            if field_kind == "rows":
                row.fields |= _variant_fields(step)
                continue
            text = _take(step, name, field_kind) if name not in row.fields else None
            if text is not None:
                row.fields[name] = text
        children: list[Row] = []
        for key in NESTED.get(kind, []):
            nested = step.get(key)
            if isinstance(nested, list) and all(isinstance(s, dict) for s in nested):
                children += to_rows(nested, f"{path}.{key}")
                del step[key]
        if not isinstance(raw, dict):
            step = {"": raw}  # not a mapping: shown as is, and validation says so
        row.fields["more"] = _more(step)
        rows += [row, *children]
    return rows


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
        if kind == "rows":
            variants = _variants_from(row)
            if variants:
                step[name] = variants
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
            steps = list_at(data, parts[:-1], parts[-1][0])
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
