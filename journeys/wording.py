"""Pydantic's validation errors, said the way a marketer reads a journey file.

A problem names the step (its number in its list, counted from 1, and its id), the field, and
what would be accepted: "step 2 ('welcome_sms') has no `type:`; expected one of send, wait,
..." rather than "Unable to extract tag using discriminator 'type'".
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from journeys.models import STEP_LIST_KEYS, STEP_MODELS, STEP_TYPES, Journey

_STEP_MODELS: dict[str, type[BaseModel]] = dict(zip(STEP_TYPES, STEP_MODELS, strict=True))
_UNION_TAGS = {*STEP_TYPES, "ContextCondition", "AudienceCondition", "ReEntryAfter"}


def fields_of(model: type[BaseModel]) -> list[str]:
    """The keys ``model`` accepts in YAML (aliases such as ``if`` and ``else`` included)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def describe(err: ErrorDetails, data: Any) -> tuple[tuple[Any, ...], str]:
    """The path of the field at fault (pydantic's union tags dropped) and a sentence about it.

    Args:
        err: one of ``ValidationError.errors()``.
        data: the journey as loaded from YAML, to name steps by their ids.
    """
    raw = tuple(err["loc"])
    step_end, tag = _innermost_step(raw)
    step = tuple(p for p in raw[:step_end] if not _is_tag(p))
    rest = tuple(p for p in raw[step_end:] if not _is_tag(p) and p != tag)
    loc = (*step, *rest)
    model: type[BaseModel] | None = _STEP_MODELS.get(tag or "") if step else Journey
    kind = f"a {tag} step" if tag and step else "a journey"
    who = _step_label(data, step) if step else "the journey"
    field = _field(rest)
    what = f"{who}, field `{field}`" if field else who
    msg = err["msg"].removeprefix("Value error, ")
    valid_types = ", ".join(STEP_TYPES)
    match err["type"]:
        case "union_tag_not_found" if step and not rest:
            return loc, f"{who} has no `type:`; expected one of {valid_types}"
        case "union_tag_invalid" if step and not rest:
            given = str(err.get("ctx", {}).get("tag", ""))
            return loc, (
                f"{who} has `type: {given}`, which is not a step type; expected one of "
                f"{valid_types}{_did_you_mean(given, list(STEP_TYPES), '`type: {}`')}"
            )
        case "missing":
            when = msg.removeprefix("Field required")  # e.g. " when `fallback` is given"
            return loc, f"{who} needs `{field}:`{when}" + (f" ({kind})" if tag else "")
        case "extra_forbidden" if len(rest) == 1 and model is not None:
            accepted = fields_of(model)
            return loc, (
                f"{who} has `{field}:`, which {kind} does not take; it takes "
                f"{', '.join(accepted)}{_did_you_mean(str(rest[0]), accepted, '`{}:`')}"
            )
        case "extra_forbidden":
            return loc, f"{what} is not a known field"
        case "model_attributes_type" if step and not rest:
            return loc, (
                f"{who} is {_shown(err.get('input'))}, not a step: write it as a mapping "
                "with `id:` and `type:`"
            )
        case _ if msg.startswith("Input should be"):
            should = msg.removeprefix("Input should be")
            return loc, f"{what} is {_shown(err.get('input'))}; it should be{should}"
    return loc, f"{what}: {msg}"


def _is_tag(part: Any) -> bool:
    # pydantic names union members in the path: a step's type, a model's class name, or a
    # validator ("function-after[_readable(), ContextCondition]").
    return isinstance(part, str) and (part in _UNION_TAGS or part.startswith("function-"))


def _innermost_step(raw: tuple[Any, ...]) -> tuple[int, str | None]:
    """Where the innermost step's path ends in ``raw`` (0 if none) and its type's tag."""
    end, tag = 0, None
    for i in range(1, len(raw)):
        if isinstance(raw[i], int) and raw[i - 1] in STEP_LIST_KEYS:
            end = i + 1
            following = raw[i + 1] if i + 1 < len(raw) else None
            tag = following if following in STEP_TYPES else None
    return end, tag


def _step_label(data: Any, path: tuple[Any, ...]) -> str:
    """ "step 3 ('check_cart'), then step 1 ('push')" for the step at ``path``."""
    parts = []
    node = data
    for key, index in zip(path[::2], path[1::2], strict=False):
        steps = node.get(key) if isinstance(node, dict) else None
        node = steps[index] if isinstance(steps, list) and index < len(steps) else None
        step_id = node.get("id") if isinstance(node, dict) else None
        named = f" ({step_id!r})" if isinstance(step_id, str) else ""
        parts.append(f"{'' if key == 'steps' else f'{key} '}step {index + 1}{named}")
    return ", ".join(parts)


def _field(path: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


def _did_you_mean(given: str, choices: list[str], shape: str) -> str:
    close = get_close_matches(given, choices, n=1)
    return f"; did you mean {shape.format(close[0])}?" if close else ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
