"""Load journey YAML and report problems a marketer can act on: file, line and field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from journeys.models import Journey, SendStep
from message_templates.sample import sample_context

SHIPPED = Path(__file__).parent


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a journey file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class JourneyError(ValueError):
    """A journey file that cannot be used; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TemplateCatalog(Protocol):
    def names(self) -> list[str]: ...
    def check(self, name: str, *, channel: str, context: Mapping[str, Any]) -> list[str]: ...


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _line_index(value, (*path, key.value), out)
            # The key's own line, not the line where a block value starts.
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    # The innermost part of the path that exists in the YAML (a missing field has none).
    path = tuple(loc)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def parse_journey(text: str, *, file: str = "<journey>") -> Journey:
    """Parse journey YAML into a :class:`Journey`, or raise :class:`JourneyError`."""
    return _parse(text, file=file)[0]


Lines = dict[tuple[Any, ...], int]


def _parse(text: str, *, file: str) -> tuple[Journey, Lines]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        column = f" (column {mark.column + 1})" if mark else ""
        raise JourneyError([Problem(file, line, "", f"not valid YAML: {what}{column}")]) from None
    if not isinstance(data, dict) or root is None:
        raise JourneyError([Problem(file, 1, "", "a journey is a YAML mapping (id, name, ...)")])
    lines: Lines = {}
    _line_index(root, (), lines)
    duplicates = _duplicate_step_ids(data, lines, file)
    if duplicates:
        raise JourneyError(duplicates)
    try:
        return Journey.model_validate(data), lines
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p not in ("send", "wait", "issue_coupon", "exit"))
            field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
            field = field.replace(".[", "[")
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(Problem(file, _line_for(lines, loc), field, msg))
        raise JourneyError(problems) from None


def _duplicate_step_ids(data: dict[str, Any], lines: Lines, file: str) -> list[Problem]:
    """Repeated step ids, each named at the step that repeats it."""
    steps = data.get("steps")
    if not isinstance(steps, list):
        return []
    seen: set[str] = set()
    problems = []
    for i, step in enumerate(steps):
        step_id = step.get("id") if isinstance(step, dict) else None
        if not isinstance(step_id, str):
            continue
        if step_id in seen:
            message = f"step id {step_id!r} is used twice; step ids must be unique"
            line = _line_for(lines, ("steps", i, "id"))
            problems.append(Problem(file, line, f"steps[{i}].id", message))
        seen.add(step_id)
    return problems


def check_templates(
    journey: Journey, templates: TemplateCatalog, *, file: str, lines: Lines | None = None
) -> list[Problem]:
    """Every ``send`` step names a template that exists, for its channel, and renders."""
    lines = lines or {}
    problems = []
    known = set(templates.names())
    for i, step in enumerate(journey.steps):
        if not isinstance(step, SendStep):
            continue
        field = f"steps[{i}].template"
        line = _line_for(lines, ("steps", i, "template"))
        if step.template not in known:
            problems.append(Problem(file, line, field, f"unknown template {step.template!r}"))
            continue
        found = templates.check(step.template, channel=step.channel, context=sample_context())
        problems.extend(Problem(file, line, field, text) for text in found)
    return problems


def load_journey(path: Path | str, templates: TemplateCatalog | None = None) -> Journey:
    """Read and validate one journey file; with ``templates``, check its templates too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JourneyError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    journey, lines = _parse(text, file=str(path))
    if templates is not None:
        problems = check_templates(journey, templates, file=str(path), lines=lines)
        if problems:
            raise JourneyError(problems)
    return journey


def shipped_journey_files() -> list[Path]:
    """The journeys that ship with the product."""
    return sorted(SHIPPED.glob("*.yaml"))
