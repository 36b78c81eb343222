"""The builder's edits on a journey as loaded from YAML: add, move, delete a step, change
its type, and add or remove a send step's A/B variants.

Pure: no database, no HTTP. Each edit works on the mapping ``yaml.safe_load`` gives (valid
or not) and raises ``ValueError`` when what it names is not there.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from journeys.models import STEP_MODELS, STEP_TYPES
from journeys.wording import fields_of
from journeys.yaml_write import NESTED_KEYS

__all__ = [
    "add_step",
    "add_variant",
    "delete_step",
    "list_at",
    "move_step",
    "new_step",
    "parse_path",
    "remove_variant",
    "retype_step",
    "steps_of",
]

# The keys each step type holds (``id`` and ``type`` included), and its nested lists.
KEYS = {t: fields_of(m) for t, m in zip(STEP_TYPES, STEP_MODELS, strict=True)}
NESTED = {t: [key for key, _ in m.NESTED] for t, m in zip(STEP_TYPES, STEP_MODELS, strict=True)}
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


def steps_of(data: dict[str, Any]) -> list[Any]:
    steps = data.get("steps")
    return steps if isinstance(steps, list) else []


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


def list_at(data: dict[str, Any], parents: list[tuple[str, int]], key: str) -> list[Any]:
    """The list ``key`` of the step ``parents`` lead to (made empty if it is not a list)."""
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
        node = node.get(name) if isinstance(node, dict) else None
        node = node[index] if isinstance(node, list) and 0 <= index < len(node) else None
    steps = node.get(parts[-1][0]) if isinstance(node, dict) else None
    index = parts[-1][1]
    if not isinstance(steps, list) or not 0 <= index < len(steps):
        raise ValueError(f"no step at {path!r}")
    return steps, index


def _step(data: dict[str, Any], path: str) -> dict[str, Any]:
    steps, index = _owner(data, path)
    if not isinstance(steps[index], dict):
        raise ValueError(f"the step at {path!r} is not a mapping")
    step: dict[str, Any] = steps[index]
    return step


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
    lists = NESTED.get(str(node.get("type")), []) if parent else ["steps"]
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


def retype_step(data: dict[str, Any], path: str, kind: str) -> None:
    """Make the step at ``path`` a ``kind`` step in place: its id, its position and the keys
    both types hold stay; whatever the new type cannot hold (its old fields, nested steps
    of a list it has not) goes. The new type's missing fields are left for validation to name.

    Raises:
        ValueError: no step at ``path``, or no step type ``kind``.
    """
    if kind not in KEYS:
        raise ValueError(f"no step type {kind!r}; expected one of {', '.join(STEP_TYPES)}")
    step = _step(data, path)
    kept = {k: v for k, v in step.items() if k in KEYS[kind] and k != "type"}
    step.clear()
    step.update({"id": kept.pop("id")} if "id" in kept else {})
    step["type"] = kind
    step.update(kept)


def _variants(step: dict[str, Any], path: str) -> list[Any]:
    variants = step.get("variants")
    if not isinstance(variants, list):
        raise ValueError(f"the variants of {path!r} are not a list the form can edit")
    return variants


def add_variant(data: dict[str, Any], path: str) -> None:
    """Add an A/B variant to the send step at ``path``, with a name no other variant of it
    has and the template of the last one. A step with one template and no variants becomes
    an A/B test of two variants of that template, to be edited.

    Raises:
        ValueError: no step at ``path``, or its variants are not a list.
    """
    step = _step(data, path)
    if step.get("variants") is None:
        template = step.pop("template", None)
        step["variants"] = [{"id": "a", "template": template}] if template is not None else []
    variants = _variants(step, path)
    last = variants[-1] if variants and isinstance(variants[-1], dict) else {}
    taken = {str(v.get("id")) for v in variants if isinstance(v, dict)}
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = next(
        (c for c in letters if c not in taken),
        next(f"v{n}" for n in range(1, len(taken) + 2) if f"v{n}" not in taken),
    )
    variant: dict[str, Any] = {"id": name}
    if "template" in last:
        variant["template"] = last["template"]
    variants.append(variant)


def remove_variant(data: dict[str, Any], path: str, index: int) -> None:
    """Remove the ``index``th variant of the send step at ``path`` (the key too, with the
    last one: the step then needs a ``template``, which validation says).

    Raises:
        ValueError: no such step or variant.
    """
    step = _step(data, path)
    variants = _variants(step, path)
    if not 0 <= index < len(variants):
        raise ValueError(f"no variant {index} in {path!r}")
    del variants[index]
    if not variants:
        del step["variants"]
