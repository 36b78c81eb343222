"""The journey's names checked against the event catalogue, one small check each: events
and their properties exist, audience rules parse, the schedule is usable, no step follows an
exit, the waits fit in the goal window."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, assert_never

from journeys.catalog import EventSpec
from journeys.durations import format_duration
from journeys.models import (
    AudienceCondition,
    BranchStep,
    ExitStep,
    IssueCouponStep,
    Journey,
    Schedule,
    SendStep,
    Step,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
)
from journeys.problems import Lines, Problem, field_name, line_for, steps_with_paths


@dataclass
class _Findings:
    """The problems found in one journey file, each placed on its line."""

    file: str
    lines: Lines
    catalog: dict[str, EventSpec]
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: tuple[Any, ...], message: str, severity: str = "error") -> None:
        line = line_for(self.lines, path)
        self.problems.append(Problem(self.file, line, field_name(path), message, severity))

    def event(self, name: str, path: tuple[Any, ...]) -> EventSpec | None:
        """The catalogue's entry for ``name``; a problem at ``path`` if there is none."""
        if name not in self.catalog:
            self.add(
                path,
                f"unknown event {name!r}; the catalogue (events.yaml) lists "
                f"{', '.join(sorted(self.catalog))}",
            )
            return None
        return self.catalog[name]

    def properties(self, spec: EventSpec | None, names: list[str], path: tuple[Any, ...]) -> None:
        """A problem for each of ``names`` the event ``spec`` does not have."""
        for name in names:
            if spec is not None and name not in spec.properties:
                self.add((*path, name), f"event {spec.name!r} has no property {name!r}")


def check_events(
    journey: Journey,
    catalog: dict[str, EventSpec],
    *,
    file: str,
    lines: Lines | None = None,
    saved_audiences: Collection[str] | None = None,
) -> list[Problem]:
    """Events and event properties the journey names exist in the catalogue; audience rules
    parse; ``wait_until`` does not land after the coupon it nudges has expired.

    ``saved_audiences`` names the audiences saved in the database (publishing passes them):
    a schedule may name one of those too. Without them (no database at hand), a name that is
    not shipped is a warning that publishing will check it.
    """
    found = _Findings(file, lines or {}, catalog)
    trigger_spec = _check_trigger(journey, found)
    _check_goal_events(journey, found)
    for i, name in enumerate(journey.exit_on):
        found.event(name, ("exit_on", i))
    rules = [(journey.entry, ("entry",))] if journey.entry is not None else []
    for step, path in steps_with_paths(journey.steps):
        rules += _check_step(step, path, trigger_spec, found)
    _check_unreachable(journey, found)
    _check_rules(rules, found)
    if journey.trigger.schedule is not None:
        _check_schedule(journey.trigger.schedule, found.add, saved_audiences)
    _check_goal_window(journey, found)
    return found.problems


def _check_trigger(journey: Journey, found: _Findings) -> EventSpec | None:
    """The trigger's event, the properties its ``where`` and ``key`` name; its spec."""
    trigger = journey.trigger
    if trigger.event is None:
        return None
    spec = found.event(trigger.event, ("trigger", "event"))
    found.properties(spec, list(trigger.where), ("trigger", "where"))
    if trigger.key:
        found.properties(spec, [trigger.key], ("trigger",))
    return spec


def _check_goal_events(journey: Journey, found: _Findings) -> None:
    """The goal's events, and the properties its ``where`` names on each."""
    if journey.goal is None:
        return
    for name in journey.goal.events():
        spec = found.event(name, ("goal", "event"))
        found.properties(spec, list(journey.goal.where), ("goal", "where"))


def _check_step(
    step: Step, path: tuple[Any, ...], trigger_spec: EventSpec | None, found: _Findings
) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
    """What one step names: events, trigger properties, a coupon-relative instant. Returns
    the audience rules it holds, to parse."""
    match step:
        case WaitForStep():
            spec = found.event(step.event, (*path, "event"))
            found.properties(spec, list(step.where), (*path, "where"))
        case BranchStep():
            condition = step.if_
            if isinstance(condition, AudienceCondition):
                return [(condition.audience, (*path, "if", "audience"))]
            _check_reference(condition.context, (*path, "if", "context"), trigger_spec, found)
        case WaitUntilStep():
            if step.at is not None:
                ref, offset = step.parts()
                _check_reference(ref, (*path, "at"), trigger_spec, found)
                if ref.endswith("expires_at") and offset > timedelta(0):
                    found.add((*path, "at"), "lands after the coupon it nudges has expired")
        case SendStep() | WaitStep() | IssueCouponStep() | ExitStep():
            pass  # names no event, property or rule
        case _:
            assert_never(step)
    return []


def _check_reference(
    ref: str, path: tuple[Any, ...], trigger_spec: EventSpec | None, found: _Findings
) -> None:
    """A ``trigger.properties.NAME`` reference names a property of the trigger's event."""
    if ref.startswith("trigger.properties."):
        found.properties(trigger_spec, [ref.split(".", 2)[2]], path)


def _check_unreachable(journey: Journey, found: _Findings) -> None:
    """No step follows an ``exit`` in the same list."""
    for steps, path in _step_lists(journey.steps, ("steps",)):
        for i, step in enumerate(steps[:-1]):
            if isinstance(step, ExitStep):
                message = f"unreachable: step {steps[i + 1].id!r} comes after an exit"
                found.add((*path, i + 1), message)


def _check_rules(rules: list[tuple[dict[str, Any], tuple[Any, ...]]], found: _Findings) -> None:
    """Each audience rule (the entry rule, branches' conditions) parses."""
    from audiences.rules import AudienceError, parse_rule

    for rule, path in rules:
        try:
            parse_rule(rule, field_name(path))
        except AudienceError as exc:
            found.add(path, str(exc))


def _check_goal_window(journey: Journey, found: _Findings) -> None:
    """A warning when the steps' waits outlast the goal window."""
    if journey.goal is None:
        return
    longest = _longest_wait(journey.steps)
    if longest > journey.goal.within:
        found.add(
            ("goal", "within"),
            f"the steps can take {format_duration(longest)}, longer than the goal window "
            f"({format_duration(journey.goal.within)}): later messages cannot convert",
            "warning",
        )


def _check_schedule(
    schedule: Schedule, problem: Callable[..., None], saved: Collection[str] | None
) -> None:
    """The cron parses, the timezone exists, the audience is shipped, saved (when ``saved``
    is known) or a valid rule."""
    from audiences.audience import ID_PATTERN
    from audiences.rules import AudienceError
    from journeys.schedule import ScheduleError, UnknownAudience, cron_trigger, schedule_audience

    try:
        cron_trigger(schedule)
    except ScheduleError as exc:
        field = "timezone" if "timezone" in str(exc) else "cron"
        problem(("trigger", "schedule", field), str(exc))
    where = ("trigger", "schedule", "audience")
    try:
        schedule_audience(schedule)
    except UnknownAudience as exc:
        if saved is not None:
            if exc.name not in saved:
                problem(where, UnknownAudience(exc.name, saved).message)
        elif ID_PATTERN.match(exc.name):
            problem(
                where,
                f"{exc.message}; publishing checks that an audience is saved as {exc.name!r}",
                "warning",
            )
        else:
            problem(where, exc.message)
    except AudienceError as exc:
        inline = exc.path != "trigger.schedule.audience"
        problem(where, str(exc) if inline else exc.message)


def _step_lists(
    steps: list[Step], path: tuple[Any, ...]
) -> list[tuple[list[Step], tuple[Any, ...]]]:
    """Every list of steps (the journey's and each nested one) with its path."""
    found = [(steps, path)]
    for i, step in enumerate(steps):
        for key, nested in step.child_lists():
            found += _step_lists(nested, (*path, i, key))
    return found


def _longest_wait(steps: list[Step]) -> timedelta:
    """The longest path of fixed waits through ``steps`` (wait_until counts as zero): each
    step's own wait, then the longest of its nested lists."""
    total = timedelta(0)
    for step in steps:
        total += _own_wait(step)
        nested = [_longest_wait(inner) for _, inner in step.child_lists()]
        total += max(nested, default=timedelta(0))
    return total


def _own_wait(step: Step) -> timedelta:
    """How long a step itself waits at most, if that is fixed."""
    match step:
        case WaitStep():
            return step.duration
        case WaitForStep():
            return step.timeout
        case SendStep() | WaitUntilStep() | BranchStep() | IssueCouponStep() | ExitStep():
            return timedelta(0)
        case _:
            assert_never(step)
