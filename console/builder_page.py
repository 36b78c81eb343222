"""What the journey builder shows: the journey's settings and steps as form fields, each
problem beside the field it names, and the diagram of the journey as it stands.

The form carries the whole journey (the builder keeps no state between requests): each
button posts every field, the page is built again from them, the button's action applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from console.queries import JourneyTotals
from console.svg import journey_diagram
from journeys.models import CONTEXT_OPS, STEP_TYPES
from journeys.problems import Lines, Problem, field_name, line_index
from journeys.validate import TemplateCatalog
from journeys.yaml_edits import (
    add_step,
    add_variant,
    delete_step,
    move_step,
    remove_variant,
    retype_step,
    steps_of,
)
from journeys.yaml_form import (
    SETTINGS,
    STEP_FIELDS,
    FormError,
    Row,
    from_form,
    settings_of,
    to_rows,
)
from journeys.yaml_write import dump_journey, leading_comments
from kinds import names as kind_names
from store.drafts import check_source

CHOICES: dict[str, tuple[str, ...]] = {
    "trigger.on_repeat": ("", "ignore", "restart"),
    "re_entry": ("", "never", "always", "after"),
    "delivery.on_frequency_cap": ("", "skip", "defer"),
    "condition": ("context", "audience"),
    "op": CONTEXT_OPS,
    "topic": ("", "marketing", "transactional"),
}
_NESTED_OF = {"branch": ("then", "else"), "wait_for": ("on_event", "on_timeout")}


@dataclass
class Slot:
    """One line of the steps list: a step's row, a nested list's heading, or a place to add."""

    kind: str  # "row" | "list" | "add"
    depth: int
    row: Row | None = None
    where: str = ""  # the list a step is added to ("steps", "steps[3].then")
    index: int = 0


@dataclass
class Placed:
    """Problems by where they show: settings fields, step rows' fields, or neither."""

    settings: dict[str, list[Problem]] = field(default_factory=dict)
    rows: dict[str, dict[str, list[Problem]]] = field(default_factory=dict)
    unplaced: list[Problem] = field(default_factory=list)


def rows_from_fields(fields: dict[str, str]) -> tuple[dict[str, str], list[Row]]:
    """The settings (``j.NAME``) and step rows (``rN.path``, ``rN.type``, ``rN.FIELD``) of a
    posted builder form, rows in their order on the page."""
    settings = {name: fields.get(f"j.{name}", "") for name, _ in SETTINGS}
    settings["more"] = fields.get("j.more", "")
    numbers = sorted(
        int(key[1:-5])
        for key in fields
        if key.startswith("r") and key.endswith(".path")
        if key[1:-5].isdigit()
    )
    rows = []
    for n in numbers:
        kind = fields.get(f"r{n}.type", "")
        names = ["id", "more", *(name for name, _ in STEP_FIELDS.get(kind, ()))]
        values = {name: fields.get(f"r{n}.{name}", "") for name in names}
        values |= {
            key.removeprefix(f"r{n}."): text
            for key, text in fields.items()
            if key.startswith(f"r{n}.variants.")
        }
        rows.append(Row(fields[f"r{n}.path"], kind, values))
    return settings, rows


def apply(data: dict[str, Any], action: str, fields: dict[str, str], opened: str) -> str:
    """Do a button's ``action`` to the journey ``data``; the path of the step to show open.

    Raises:
        ValueError: the action names no step or list of this journey.
    """
    verb, _, target = action.partition(":")
    match verb:
        case "edit" | "retype":  # a changed type is applied by retype(), before the action
            return target
        case "up" | "down":
            moved = move_step(data, target, -1 if verb == "up" else 1)
            return moved if opened == target else opened
        case "delete":
            delete_step(data, target)
            return ""
        case "add":
            where, _, index = target.rpartition(":")
            kind = fields.get(f"add_type:{target}", "")
            return add_step(data, where, int(index) if index.isdigit() else 0, kind)
        case "add_variant":
            add_variant(data, target)
            return target
        case "remove_variant":
            path, _, index = target.rpartition(":")
            remove_variant(data, path, int(index) if index.isdigit() else -1)
            return path
        case _:
            return opened


def retype(data: dict[str, Any], rows: list[Row], fields: dict[str, str]) -> str:
    """Give each step whose type selector (``type:PATH``) was changed its new type; the path
    of the last one changed ("" if none)."""
    changed = ""
    for row in rows:
        kind = fields.get(f"type:{row.path}", row.type)
        if kind == row.type or kind not in STEP_TYPES:
            continue
        try:
            retype_step(data, row.path, kind)
        except ValueError:
            continue  # nested in a step whose new type holds no such list: gone with it
        changed = row.path
    return changed


def _slots(steps: list[Any], rows: dict[str, Row], where: str, depth: int) -> list[Slot]:
    slots = []
    for i, step in enumerate(steps):
        path = f"{where}[{i}]"
        slots.append(Slot("add", depth, where=where, index=i))
        slots.append(Slot("row", depth, row=rows[path]))
        kind = step.get("type") if isinstance(step, dict) else None
        for key in _NESTED_OF.get(kind, ()) if isinstance(kind, str) else ():
            nested = step.get(key, [])
            if isinstance(nested, list) and all(isinstance(s, dict) for s in nested):
                slots.append(Slot("list", depth + 1, where=f"{path}.{key}"))
                slots += _slots(nested, rows, f"{path}.{key}", depth + 1)
    slots.append(Slot("add", depth, where=where, index=len(steps)))
    return slots


def _by_line(text: str) -> dict[int, tuple[Any, ...]]:
    """Each line of the YAML and the deepest path that starts on it."""
    lines: Lines = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        line_index(root, (), lines)
    found: dict[int, tuple[Any, ...]] = {}
    for path, line in lines.items():
        if len(path) >= len(found.get(line, ())):
            found[line] = path
    return found


def _row_field(row: Row, rest: str) -> str:
    name = rest.replace("[", ".").split(".")[0]
    if name == "if":
        inner = rest.split(".")[1] if "." in rest else ""
        return {"context": "context", "audience": "audience"}.get(
            inner, "value" if inner in CONTEXT_OPS else "condition"
        )
    known = {"id", "type", *(n for n, _ in STEP_FIELDS.get(row.type, ()))}
    if name == "variants" and name in known and rest[len(name) :].startswith("["):
        return rest.split("]")[0] + "]"  # "variants[1]": beside that variant's row
    return name if name in known else ""


def place(problems: list[Problem], text: str, rows: list[Row]) -> Placed:
    """Put each problem beside the field it names (by its field, else by its line)."""
    placed = Placed()
    lines = _by_line(text)
    paths = sorted((r.path for r in rows), key=len, reverse=True)
    by_path = {r.path: r for r in rows}
    for problem in problems:
        where = problem.field or field_name(lines.get(problem.line or 0, ()))
        row = next((p for p in paths if where == p or where.startswith((p + ".", p + "["))), None)
        if row is not None:
            name = _row_field(by_path[row], where[len(row) + 1 :])
            placed.rows.setdefault(row, {}).setdefault(name, []).append(problem)
            continue
        setting = next(
            (
                n
                for n, _ in reversed(SETTINGS)
                if where == n or where.startswith((n + ".", n + "["))
            ),
            None,
        )
        if setting is not None:
            placed.settings.setdefault(setting, []).append(problem)
        else:
            placed.unplaced.append(problem)
    return placed


@dataclass
class Builder:
    """The builder's page for one journey, from its YAML."""

    journey_id: str
    templates: TemplateCatalog

    def page(
        self,
        text: str,
        *,
        opened: str = "",
        posted: dict[str, str] | None = None,
        form_error: FormError | None = None,
    ) -> dict[str, Any]:
        """The page's context for the journey ``text`` (as :func:`dump_journey` writes it).

        With ``posted`` (a form whose ``form_error`` kept it from being read), its fields
        show as typed, over the journey's, and the error beside its field.
        """
        data = yaml.safe_load(text)
        data = data if isinstance(data, dict) else {}
        steps = steps_of(data)
        rows = to_rows(steps)
        settings = settings_of(data)
        checked = check_source(
            text,
            file=f"{self.journey_id} builder",
            templates=self.templates,
            journey_id=self.journey_id,
        )
        problems = list(checked.problems)
        if posted is not None:
            typed, typed_rows = rows_from_fields(posted)
            settings |= typed
            by_path = {r.path: r for r in typed_rows}
            for row in rows:
                row.fields |= by_path[row.path].fields if row.path in by_path else {}
        if form_error is not None:
            problems.insert(0, Problem("form", None, form_error.field, str(form_error)))
        placed = place(problems, text, rows)
        diagram = (
            journey_diagram(checked.journey, {}, JourneyTotals())
            if checked.journey is not None
            else None
        )
        return {
            "title": f"Builder · {self.journey_id}",
            "journey_id": self.journey_id,
            "header": leading_comments(text),
            "settings": settings,
            "slots": _slots(steps, {r.path: r for r in rows}, "steps", 0),
            "open_rows": {opened, *placed.rows},
            "step_fields": {kind: [n for n, _ in f] for kind, f in STEP_FIELDS.items()},
            "step_types": STEP_TYPES,
            "choices": CHOICES,
            "channels": kind_names(),
            "template_names": sorted(self.templates.names()),
            "placed": placed,
            "problems": problems,
            "errors": len(checked.errors) + (form_error is not None),
            "diagram": diagram,
            "yaml": text,
        }

    def posted(self, fields: dict[str, str]) -> tuple[str, str]:
        """The journey a posted form describes, after its button's action, as YAML; and
        the step to show open.

        Raises:
            FormError: a field cannot be read.
            ValueError: the action names no step of the journey.
        """
        settings, rows = rows_from_fields(fields)
        data = from_form(settings, rows)
        opened = retype(data, rows, fields) or fields.get("open", "")
        opened = apply(data, fields.get("action", ""), fields, opened)
        return dump_journey(data, header=fields.get("header", "")), opened


def normalised(source: str) -> str | None:
    """A journey's YAML as the builder writes it; None if it is not a YAML mapping."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    return dump_journey(data, header=leading_comments(source))
