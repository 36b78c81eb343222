"""Where a problem is in a journey file: its line, its field, and the problem itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from journeys.models import Step

# A path in the YAML (("steps", 2, "then", 0, "template")) -> its line.
Lines = dict[tuple[Any, ...], int]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a journey file."""

    file: str
    line: int | None
    field: str
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {'warning: ' if self.severity == 'warning' else ''}{text}"


class JourneyError(ValueError):
    """A journey file that cannot be used; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            line_index(value, (*path, key.value), out)
            # The key's own line, not the line where a block value starts.
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            line_index(item, (*path, i), out)


def line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    # The innermost part of the path that exists in the YAML (a missing field has none).
    path = tuple(loc)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def steps_with_paths(
    steps: list[Step], prefix: tuple[Any, ...] = ("steps",)
) -> list[tuple[Step, tuple[Any, ...]]]:
    """Every step with its path in the YAML, nested ones included, in document order."""
    found: list[tuple[Step, tuple[Any, ...]]] = []
    for i, step in enumerate(steps):
        path = (*prefix, i)
        found.append((step, path))
        for key, nested in step.child_lists():
            found += steps_with_paths(nested, (*path, key))
    return found


def field_name(path: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
