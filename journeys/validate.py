"""Load journey YAML and report problems a marketer can act on: file, line and field."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from journeys.catalog import CATALOG_FILE, EventSpec, load_catalog
from journeys.durations import format_duration
from journeys.models import (
    AudienceCondition,
    BranchStep,
    ContextCondition,
    ExitStep,
    IssueCouponStep,
    Journey,
    Schedule,
    SendStep,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    walk,
)
from journeys.wording import describe
from message_templates.sample import sample_context

SHIPPED = Path(__file__).parent
_FIELD_MESSAGE = re.compile(r"^([a-z_]+): (.+)$")


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
            problems.append(Problem(file, _line_for(lines, loc), _field(loc), text))
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


def _steps_with_paths(
    steps: list[Any], prefix: tuple[Any, ...] = ("steps",)
) -> list[tuple[Any, tuple[Any, ...]]]:
    """Every step with its path in the YAML, nested ones included, in document order."""
    found = []
    for i, step in enumerate(steps):
        path = (*prefix, i)
        found.append((step, path))
        if isinstance(step, WaitForStep):
            found += _steps_with_paths(step.on_event, (*path, "on_event"))
            found += _steps_with_paths(step.on_timeout, (*path, "on_timeout"))
        elif isinstance(step, BranchStep):
            found += _steps_with_paths(step.then, (*path, "then"))
            found += _steps_with_paths(step.else_, (*path, "else"))
    return found


def _field(path: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


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
    for step, path in _steps_with_paths(journey.steps):
        if not isinstance(step, SendStep):
            continue
        where = _field((*path, "template"))
        line = _line_for(lines, (*path, "template")) or _line_for(lines, path)
        main = [step.template] if step.template else [v.template for v in step.variants or []]
        pairs = [(name, step.channel) for name in main]
        if step.fallback and step.fallback_template:
            pairs.append((step.fallback_template, step.fallback))
        for name, channel in pairs:
            if name not in known:
                problems.append(Problem(file, line, where, f"unknown template {name!r}"))
                continue
            found = templates.check(name, channel=channel, context=context)
            problems.extend(Problem(file, line, where, text) for text in found)
            if channel == "sms" and not found:
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


def check_events(
    journey: Journey, catalog: dict[str, EventSpec], *, file: str, lines: Lines | None = None
) -> list[Problem]:
    """Events and event properties the journey names exist in the catalogue; audience rules
    parse; ``wait_until`` does not land after the coupon it nudges has expired."""
    from audiences.rules import AudienceError, parse_rule

    lines = lines or {}
    problems: list[Problem] = []

    def problem(path: tuple[Any, ...], message: str, severity: str = "error") -> None:
        line = _line_for(lines, path)
        problems.append(Problem(file, line, _field(path), message, severity))

    def known_event(name: str, path: tuple[Any, ...]) -> EventSpec | None:
        if name not in catalog:
            problem(
                path,
                f"unknown event {name!r}; the catalogue (events.yaml) lists "
                f"{', '.join(sorted(catalog))}",
            )
            return None
        return catalog[name]

    def known_props(spec: EventSpec | None, names: list[str], path: tuple[Any, ...]) -> None:
        for name in names:
            if spec is not None and name not in spec.properties:
                problem((*path, name), f"event {spec.name!r} has no property {name!r}")

    trigger = journey.trigger
    trigger_spec = None
    if trigger.event is not None:
        trigger_spec = known_event(trigger.event, ("trigger", "event"))
        known_props(trigger_spec, list(trigger.where), ("trigger", "where"))
        if trigger.key:
            known_props(trigger_spec, [trigger.key], ("trigger",))
    if journey.goal is not None:
        goal_path = ("goal", "event")
        specs = [known_event(e, goal_path) for e in journey.goal.events()]
        for spec in specs:
            known_props(spec, list(journey.goal.where), ("goal", "where"))
    for i, name in enumerate(journey.exit_on):
        known_event(name, ("exit_on", i))
    rules = [(journey.entry, ("entry",))] if journey.entry is not None else []
    for step, path in _steps_with_paths(journey.steps):
        if isinstance(step, WaitForStep):
            spec = known_event(step.event, (*path, "event"))
            known_props(spec, list(step.where), (*path, "where"))
        elif isinstance(step, BranchStep) and isinstance(step.if_, AudienceCondition):
            rules.append((step.if_.audience, (*path, "if", "audience")))
        elif isinstance(step, BranchStep) and isinstance(step.if_, ContextCondition):
            ref = step.if_.context
            if ref.startswith("trigger.properties."):
                known_props(trigger_spec, [ref.split(".", 2)[2]], (*path, "if", "context"))
        elif isinstance(step, WaitUntilStep) and step.at is not None:
            ref, offset = step.parts()
            if ref.startswith("trigger.properties."):
                known_props(trigger_spec, [ref.split(".", 2)[2]], (*path, "at"))
            if ref.endswith("expires_at") and offset > timedelta(0):
                problem((*path, "at"), "lands after the coupon it nudges has expired")
    for steps, path in _step_lists(journey.steps, ("steps",)):
        for i, step in enumerate(steps[:-1]):
            if isinstance(step, ExitStep):
                problem(
                    (*path, i + 1), f"unreachable: step {steps[i + 1].id!r} comes after an exit"
                )
    for rule, path in rules:
        try:
            parse_rule(rule, _field(path))
        except AudienceError as exc:
            problem(path, str(exc))
    if trigger.schedule is not None:
        _check_schedule(trigger.schedule, problem)
    if journey.goal is not None:
        longest = _longest_wait(journey.steps)
        if longest > journey.goal.within:
            problem(
                ("goal", "within"),
                f"the steps can take {format_duration(longest)}, longer than the goal window "
                f"({format_duration(journey.goal.within)}): later messages cannot convert",
                "warning",
            )
    return problems


def _check_schedule(schedule: Schedule, problem: Callable[..., None]) -> None:
    """The cron parses, the timezone exists, the audience is shipped or a valid rule."""
    from audiences.rules import AudienceError
    from journeys.schedule import ScheduleError, cron_trigger, schedule_audience

    try:
        cron_trigger(schedule)
    except ScheduleError as exc:
        field = "timezone" if "timezone" in str(exc) else "cron"
        problem(("trigger", "schedule", field), str(exc))
    try:
        schedule_audience(schedule)
    except AudienceError as exc:
        inline = exc.path != "trigger.schedule.audience"
        problem(("trigger", "schedule", "audience"), str(exc) if inline else exc.message)


def _step_lists(steps: list[Any], path: tuple[Any, ...]) -> list[tuple[list[Any], tuple[Any, ...]]]:
    """Every list of steps (the journey's and each nested one) with its path."""
    found = [(steps, path)]
    for i, step in enumerate(steps):
        if isinstance(step, WaitForStep):
            found += _step_lists(step.on_event, (*path, i, "on_event"))
            found += _step_lists(step.on_timeout, (*path, i, "on_timeout"))
        elif isinstance(step, BranchStep):
            found += _step_lists(step.then, (*path, i, "then"))
            found += _step_lists(step.else_, (*path, i, "else"))
    return found


def _longest_wait(steps: list[Any]) -> timedelta:
    """The longest path of fixed waits through ``steps`` (wait_until counts as zero)."""
    total = timedelta(0)
    for step in steps:
        match step:
            case WaitStep():
                total += step.duration
            case WaitForStep():
                total += step.timeout + max(
                    _longest_wait(step.on_event), _longest_wait(step.on_timeout)
                )
            case BranchStep():
                total += max(_longest_wait(step.then), _longest_wait(step.else_))
    return total


def load_journey(
    path: Path | str,
    templates: TemplateCatalog | None = None,
    *,
    warnings: list[Problem] | None = None,
) -> Journey:
    """Read and validate one journey file; with ``templates``, check it against the event
    catalogue and render its templates too (warnings, if wanted, are appended to
    ``warnings``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JourneyError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    journey, lines = _parse(text, file=str(path))
    if templates is not None:
        catalog = load_catalog()
        problems = check_events(journey, catalog, file=str(path), lines=lines)
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
