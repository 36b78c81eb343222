"""Load journey YAML and report problems a marketer can act on: file, line and field."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from journeys.catalog import CATALOG_FILE, EventSpec, load_catalog
from journeys.event_checks import check_events
from journeys.models import IssueCouponStep, Journey, SendStep, walk
from journeys.problems import (
    JourneyError,
    Lines,
    Problem,
    field_name,
    line_for,
    line_index,
    steps_with_paths,
)
from journeys.wording import describe
from kinds import kind
from message_templates.sample import sample_context

# Read by other modules under their former names.
__all__ = ["JourneyError", "Problem", "check_events", "check_templates", "load_journey"]
_line_for, _line_index = line_for, line_index

SHIPPED = Path(__file__).parent
_FIELD_MESSAGE = re.compile(r"^([a-z_]+): (.+)$")


class Rendered(Protocol):
    @property
    def locale(self) -> str: ...
    @property
    def segments(self) -> int | None: ...


class TemplateCatalog(Protocol):
    def names(self) -> list[str]: ...
    def check(self, name: str, *, channel: str, context: Mapping[str, Any]) -> list[str]: ...
    def render(
        self, name: str, *, channel: str, locale: str | None, context: Mapping[str, Any]
    ) -> Rendered: ...


# SMS longer than this many segments (each billed as one message) get a warning.
MAX_SMS_SEGMENTS = 2


def parse_journey(text: str, *, file: str = "<journey>") -> Journey:
    """Parse journey YAML into a :class:`Journey`, or raise :class:`JourneyError`."""
    return _parse(text, file=file)[0]


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
    line_index(root, (), lines)
    duplicates = _duplicate_step_ids(data, lines, file)
    if duplicates:
        raise JourneyError(duplicates)
    try:
        return Journey.model_validate(data), lines
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            named = _FIELD_MESSAGE.match(msg) if err["type"] == "value_error" else None
            if named:  # a model validator naming its field: "template: Field required"
                missing = named[2].startswith("Field required")
                err = {
                    **err,
                    "loc": (*err["loc"], named[1]),
                    "msg": named[2],
                    "type": "missing" if missing else "value_error",
                }
            loc, text = describe(err, data)
            problems.append(Problem(file, line_for(lines, loc), field_name(loc), text))
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
            line = line_for(lines, ("steps", i, "id"))
            problems.append(Problem(file, line, f"steps[{i}].id", message))
        seen.add(step_id)
    return problems


def _render_context(journey: Journey, catalog: dict[str, EventSpec]) -> dict[str, Any]:
    """A context shaped like the one ``deliver`` builds for this journey's messages."""
    context = sample_context()
    trigger = journey.trigger.event
    spec = catalog.get(trigger) if trigger else None
    properties = spec.sample_properties() if spec else {}
    context["trigger"] = {
        "event": trigger or "audience_sweep",
        "properties": properties,
        "timestamp": context["trigger"]["timestamp"],
    }
    issues = any(isinstance(s, IssueCouponStep) for s in walk(journey.steps))
    if not issues and "coupon_code" not in properties:
        context["coupon"] = None
    return context


def check_templates(
    journey: Journey,
    templates: TemplateCatalog,
    *,
    file: str,
    lines: Lines | None = None,
    catalog: dict[str, EventSpec] | None = None,
) -> list[Problem]:
    """Every ``send`` step names templates that exist, for its channels, and render with a
    context like the journey's own (its trigger's properties, a coupon if it issues one)."""
    lines = lines or {}
    context = _render_context(journey, catalog if catalog is not None else load_catalog())
    problems = []
    known = set(templates.names())
    for step, path in steps_with_paths(journey.steps):
        if not isinstance(step, SendStep):
            continue
        for i, (name, channel) in enumerate(step.templates()):
            # A variant's template is named at that variant, as a form shows it.
            at = (*path, "variants", i, "template") if i < len(step.variants or ()) else ()
            where = field_name(at or (*path, "template"))
            line = line_for(lines, at or (*path, "template"))
            if name not in known:
                problems.append(Problem(file, line, where, f"unknown template {name!r}"))
                continue
            found = templates.check(name, channel=channel, context=context)
            problems.extend(Problem(file, line, where, text) for text in found)
            if kind(channel).template.segmented and not found:
                for locale, person in (("zh-CN", "王小明"), ("en", "Alex")):
                    sample = {**context, "user": {**context["user"], "name": person}}
                    rendered = templates.render(
                        name, channel=channel, locale=locale, context=sample
                    )
                    if (rendered.segments or 0) > MAX_SMS_SEGMENTS:
                        problems.append(
                            Problem(
                                file,
                                line,
                                where,
                                f"{name} ({rendered.locale}) is {rendered.segments} SMS segments "
                                f"with sample data; more than {MAX_SMS_SEGMENTS} costs more",
                                "warning",
                            )
                        )
    return problems


def load_journey(
    path: Path | str,
    templates: TemplateCatalog | None = None,
    *,
    warnings: list[Problem] | None = None,
    saved_audiences: Collection[str] | None = None,
) -> Journey:
    """Read and validate one journey file; with ``templates``, check it against the event
    catalogue and render its templates too (warnings, if wanted, are appended to
    ``warnings``). ``saved_audiences``: the names a schedule may name besides the shipped
    audiences (see :func:`check_events`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JourneyError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    journey, lines = _parse(text, file=str(path))
    if templates is not None:
        catalog = load_catalog()
        problems = check_events(
            journey, catalog, file=str(path), lines=lines, saved_audiences=saved_audiences
        )
        problems += check_templates(
            journey, templates, file=str(path), lines=lines, catalog=catalog
        )
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise JourneyError(errors)
        if warnings is not None:
            warnings.extend(p for p in problems if p.severity == "warning")
    return journey


def shipped_journey_files() -> list[Path]:
    """The journeys that ship with the product (every YAML here but the event catalogue)."""
    return sorted(p for p in SHIPPED.glob("*.yaml") if p.name != CATALOG_FILE.name)
