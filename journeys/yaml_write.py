"""Write a journey, as loaded from YAML, back as YAML in the shipped files' style.

The console's builder saves what it writes here, so a journey opened and saved unchanged
gives the same text every time. The style, and what it normalises:

- keys in the order the models declare them (``id, name, description, trigger, ...``; a
  step's ``id, type`` then its own fields; a context condition's ``context`` then its
  operator); keys a model does not know come after, in their own order, so validation can
  still name them;
- two-space indents, steps as ``- id: ...`` items, mappings of the spec in block style;
- lists of plain values in flow style (``exit_on: [account_deleted]``), and a short
  property filter or audience rule too (``where: {total: {gte: 50}}``) when it fits on its
  line; empty ones as ``{}`` and ``[]``;
- strings plain unless YAML needs quotes, or they hold ``* & ! | > % @`` or a backquote;
  then in double quotes (``cron: "0 10 * * *"``);
- an empty ``then``/``else``/``on_event``/``on_timeout`` list is left out (it means the same);
- the comment block at the top of the file is kept; every other comment is lost.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import yaml
from pydantic import BaseModel

from journeys.models import (
    CONTEXT_OPS,
    STEP_MODELS,
    STEP_TYPES,
    DeliveryOverrides,
    Goal,
    Journey,
    ReEntryAfter,
    Schedule,
    Trigger,
    Variant,
)
from journeys.wording import fields_of

__all__ = ["dump_journey", "flow", "leading_comments"]

WIDTH = 88
NESTED_KEYS = {key for model in STEP_MODELS for key, _ in model.NESTED}
_STEPS = dict(zip(STEP_TYPES, STEP_MODELS, strict=True))
# Where a key holds one of the spec's own mappings (block style, keys in model order).
_CHILD_MODELS: dict[str, type[BaseModel]] = {
    "trigger": Trigger,
    "schedule": Schedule,
    "goal": Goal,
    "re_entry": ReEntryAfter,
    "delivery": DeliveryOverrides,
}
_STEP_LISTS = {"steps", *NESTED_KEYS}


class _Condition(BaseModel):
    """Stands for a branch's ``if`` mapping (a context or an audience condition)."""


_QUOTED = set("*&!|>%@`")
_RESOLVER = yaml.resolver.Resolver()  # reads a plain scalar as the safe loader would
_EMITTER = yaml.emitter.Emitter(None, allow_unicode=True)  # type: ignore[arg-type]


def leading_comments(text: str) -> str:
    """The comment lines (and blank lines between them) at the top of a YAML file."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.startswith("#") or (kept and not line.strip()):
            kept.append(line.rstrip())
        else:
            break
    while kept and not kept[-1]:
        kept.pop()
    return "".join(f"{line}\n" for line in kept)


def dump_journey(data: dict[str, Any], *, header: str = "") -> str:
    """The journey mapping ``data`` (as ``yaml.safe_load`` gives it) as YAML text.

    Args:
        data: the journey; it need not be valid (a draft with problems is written too).
        header: comment lines to put first (:func:`leading_comments` of the file read).
    """
    return header + "".join(f"{line}\n" for line in _mapping(data, Journey, 0))


def flow(value: Any) -> str:
    """``value`` on one line: a scalar, ``[a, b]`` or ``{k: v}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k, True)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return _scalar(value, True)


def _ordered(data: dict[Any, Any], model: type[BaseModel] | None) -> list[Any]:
    known = fields_of(model) if model is not None else []
    first = [k for k in known if k in data]
    return first + [k for k in data if k not in first]


def _condition_order(data: dict[Any, Any]) -> list[Any]:
    known = ["context", *CONTEXT_OPS, "op", "value", "audience"]
    first = [k for k in known if k in data]
    return first + [k for k in data if k not in first]


def _step_model(data: dict[Any, Any]) -> type[BaseModel] | None:
    kind = data.get("type")
    return _STEPS.get(kind) if isinstance(kind, str) else None


def _mapping(data: dict[Any, Any], model: type[BaseModel] | None, indent: int) -> list[str]:
    keys = _condition_order(data) if model is _Condition else _ordered(data, model)
    lines: list[str] = []
    for key in keys:
        value = data[key]
        if key in NESTED_KEYS and model in STEP_MODELS and value == []:
            continue
        lines += _entry(key, value, model, indent)
    return lines


def _entry(key: Any, value: Any, parent: type[BaseModel] | None, indent: int) -> list[str]:
    pad = " " * indent
    head = f"{pad}{_scalar(key, False)}:"
    child = _child_model(key, parent)
    if isinstance(value, dict) and value:
        if child is None and _fits(head, value):
            return [f"{head} {flow(value)}"]
        return [head, *_mapping(value, child, indent + 2)]
    if isinstance(value, list) and value and not _all_scalars(value):
        items = _step_model if key in _STEP_LISTS and parent is not None else None
        element: type[BaseModel] | None = Variant if key == "variants" else None
        return [head, *_sequence(value, indent + 2, element, items)]
    if isinstance(value, dict | list):
        return [f"{head} {flow(value)}"]
    return [f"{head} {_scalar(value, False)}"]


def _child_model(key: Any, parent: type[BaseModel] | None) -> type[BaseModel] | None:
    if parent is None:
        return None
    if key == "if" and parent in STEP_MODELS:
        return _Condition
    if parent is _Condition:
        return None
    return _CHILD_MODELS.get(key) if parent in (Journey, Trigger) else None


def _sequence(
    items: list[Any], indent: int, element: type[BaseModel] | None, by_type: Any
) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict) and item:
            model = by_type(item) if by_type is not None else element
            inner = _mapping(item, model, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
        elif isinstance(item, list) and item and not _all_scalars(item):
            lines.append(f"{pad}-")
            lines += _sequence(item, indent + 2, None, None)
        else:
            lines.append(f"{pad}- {flow(item)}")
    return lines


def _fits(head: str, value: dict[Any, Any]) -> bool:
    return len(head) + 1 + len(flow(value)) <= WIDTH


def _all_scalars(items: list[Any]) -> bool:
    return all(not isinstance(v, dict | list) for v in items)


def _scalar(value: Any, in_flow: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) or isinstance(value, date | datetime):
        dumped = yaml.safe_dump(value, allow_unicode=True)
        return dumped.removesuffix("\n...\n").strip()
    text = str(value)
    if _plain(text, in_flow):
        return text
    return json.dumps(text, ensure_ascii=False)


def _plain(text: str, in_flow: bool) -> bool:
    if not text or text != text.strip() or _QUOTED & set(text):
        return False
    analysis = _EMITTER.analyze_scalar(text)
    allowed = analysis.allow_flow_plain if in_flow else analysis.allow_block_plain
    if analysis.multiline or not allowed:
        return False
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"
