"""Journey files as a marketer writes them: shipped ones load, bad ones say file, line, field."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from journeys.durations import format_duration, parse_duration
from journeys.models import Journey, SendStep
from journeys.validate import (
    JourneyError,
    Problem,
    load_journey,
    parse_journey,
    shipped_journey_files,
)
from message_templates.render import TemplateRenderer

# A journey of the tests' own, so edits to the shipped copy do not move these lines.
JOURNEY = """\
# 7-day new-user coupon, as a marketer writes it.
id: new_user_coupon
name: 7-day new-user coupon
trigger:
  event: user_signed_up
goal:
  event: order_placed
  within: 7d
exit_on: [account_deleted]
holdout: 10          # percent held out
steps:
  - id: welcome_coupon
    type: issue_coupon
    amount: 20
    min_spend: 50
    valid_for: 7d
  - id: welcome_sms
    type: send
    channel: sms
    template: welcome_sms
  - id: wait_day2
    type: wait
    duration: 2d
  - id: day2_push
    type: send
    channel: push
    template: reminder_push
  - id: wait_day6
    type: wait
    duration: 4d
  - id: day6_email
    type: send
    channel: email
    template: last_chance_email
"""

CATALOG = {
    "welcome_sms": "channel: sms\nlocales:\n  zh-CN:\n    body: 欢迎，{{ user.name or '亲' }}\n",
    "reminder_push": (
        "channel: push\nlocales:\n  zh-CN:\n    title: 新人券\n    body: 别忘了你的券\n"
    ),
    "last_chance_email": (
        "channel: email\nlocales:\n  zh-CN:\n    subject: 最后一天\n"
        "    text: 券明天到期\n    html: <p>券明天到期</p>\n"
    ),
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> TemplateRenderer:
    directory = tmp_path_factory.mktemp("templates")
    for name, text in CATALOG.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return TemplateRenderer(directory)


def edited(old: str, new: str) -> str:
    """The test journey with one edit (which must apply exactly once)."""
    assert JOURNEY.count(old) == 1, old
    return JOURNEY.replace(old, new)


def lines_of(text: str, fragment: str) -> list[int]:
    """The 1-based lines holding ``fragment``."""
    return [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]


def line_of(text: str, fragment: str) -> int:
    """The 1-based line holding ``fragment`` (which must appear on exactly one line)."""
    found = lines_of(text, fragment)
    assert len(found) == 1, (fragment, found)
    return found[0]


def problems_of(tmp_path: Path, text: str, templates: TemplateRenderer) -> list[Problem]:
    path = tmp_path / "bad_journey.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(JourneyError) as caught:
        load_journey(path, templates)
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    assert all(p.file == str(path) for p in caught.value.problems)
    return caught.value.problems


def only_problem(tmp_path: Path, text: str, templates: TemplateRenderer) -> Problem:
    problems = problems_of(tmp_path, text, templates)
    assert len(problems) == 1, problems
    return problems[0]


# --- shipped journeys ---------------------------------------------------------------------


def test_journeys_ship_with_the_product() -> None:
    assert "new_user_coupon" in [p.stem for p in shipped_journey_files()]


@pytest.mark.parametrize("path", shipped_journey_files(), ids=lambda p: p.stem)
def test_every_shipped_journey_is_valid_with_the_shipped_templates(path: Path) -> None:
    journey = load_journey(path, TemplateRenderer())
    assert journey.id == path.stem
    assert len({step.id for step in journey.steps}) == len(journey.steps)


# --- problems name the file, the line and the field -------------------------------------


def test_the_unedited_journey_is_valid(tmp_path: Path, templates: TemplateRenderer) -> None:
    path = tmp_path / "journey.yaml"
    path.write_text(JOURNEY, encoding="utf-8")
    journey = load_journey(path, templates)
    assert [s.id for s in journey.steps][-1] == "day6_email"


def test_malformed_duration(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("duration: 4d", "duration: 4x")
    problem = only_problem(tmp_path, text, templates)
    assert problem.line == line_of(text, "duration: 4x")
    assert problem.field == "steps[4].duration"
    assert "'4x'" in problem.message and "2d" in problem.message
    assert str(problem) == (
        f"{tmp_path / 'bad_journey.yaml'}:{problem.line}: steps[4].duration: {problem.message}"
    )


def test_unknown_channel(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("channel: push", "channel: wechat")
    problem = only_problem(tmp_path, text, templates)
    assert (problem.line, problem.field) == (line_of(text, "channel: wechat"), "steps[3].channel")
    assert "'sms', 'email' or 'push'" in problem.message


def test_unknown_step_type(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("type: wait\n    duration: 2d", "type: sleep\n    duration: 2d")
    problem = only_problem(tmp_path, text, templates)
    # The step at fault: its first line or its `type:` line.
    assert problem.line in (line_of(text, "id: wait_day2"), line_of(text, "type: sleep"))
    assert problem.field.startswith("steps[2]")
    assert "`type: sleep`" in problem.message
    assert "send, wait, wait_until, wait_for, branch, issue_coupon, exit" in problem.message


def test_unknown_field_in_a_step(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("    template: reminder_push\n", "    templte: reminder_push\n")
    problems = problems_of(tmp_path, text, templates)
    assert {(p.line, p.field) for p in problems} == {
        (line_of(text, "templte:"), "steps[3].templte")
    }
    assert [p.message for p in problems if p.field.endswith("templte")] == [
        "step 4 ('day2_push') has `templte:`, which a send step does not take; it takes id, "
        "type, channel, template, variants, fallback, fallback_template, topic; "
        "did you mean `template:`?"
    ]


def test_unknown_top_level_field_with_a_scalar_value(
    tmp_path: Path, templates: TemplateRenderer
) -> None:
    text = edited("holdout: 10 ", "holdot: 10 ")
    problem = only_problem(tmp_path, text, templates)
    assert (problem.line, problem.field) == (line_of(text, "holdot:"), "holdot")
    assert "the journey has `holdot:`, which a journey does not take" in problem.message
    assert problem.message.endswith("did you mean `holdout:`?")


def test_typo_in_a_top_level_field_names_its_line(
    tmp_path: Path, templates: TemplateRenderer
) -> None:
    text = edited("trigger:", "tigger:")
    problems = problems_of(tmp_path, text, templates)
    typo = next(p for p in problems if p.field == "tigger")
    assert "the journey has `tigger:`, which a journey does not take" in typo.message
    assert "trigger" in [p.field for p in problems]  # the real field is now missing
    assert typo.line == line_of(text, "tigger:")


def test_step_id_must_be_a_slug(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("- id: wait_day6", "- id: Wait Day 6")
    problem = only_problem(tmp_path, text, templates)
    assert (problem.line, problem.field) == (line_of(text, "Wait Day 6"), "steps[4].id")
    assert "day2_push" in problem.message  # an example of a good id


def test_duplicate_step_ids_are_refused(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("- id: wait_day6", "- id: wait_day2")
    problem = only_problem(tmp_path, text, templates)
    assert "'wait_day2' is used twice" in problem.message


def test_duplicate_step_id_names_the_repeated_step(
    tmp_path: Path, templates: TemplateRenderer
) -> None:
    text = edited("- id: wait_day6", "- id: wait_day2")
    problem = only_problem(tmp_path, text, templates)
    assert problem.field == "steps[4].id"
    assert problem.line == lines_of(text, "- id: wait_day2")[1]


def test_unknown_template(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("template: reminder_push", "template: remindr_push")
    problem = only_problem(tmp_path, text, templates)
    assert (problem.line, problem.field) == (
        line_of(text, "remindr_push"),
        "steps[3].template",
    )
    assert problem.message == "unknown template 'remindr_push'"


def test_template_written_for_another_channel(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("template: reminder_push", "template: welcome_sms")
    problem = only_problem(tmp_path, text, templates)
    second_use = lines_of(text, "template: welcome_sms")[1]
    assert (problem.line, problem.field) == (second_use, "steps[3].template")
    assert "written for sms, not push" in problem.message


def test_templates_are_only_checked_when_a_catalog_is_given(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(edited("template: reminder_push", "template: not_yet_written"))
    step = load_journey(path).steps[3]
    assert isinstance(step, SendStep) and step.template == "not_yet_written"


def test_invalid_yaml_gives_the_line(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("name: 7-day new-user coupon", "name: 7-day: new-user coupon")
    problem = only_problem(tmp_path, text, templates)
    assert problem.line == line_of(text, "name: 7-day: new-user coupon")
    assert problem.field == ""
    assert problem.message.startswith("not valid YAML: mapping values are not allowed here")
    assert str(problem).startswith(f"{tmp_path / 'bad_journey.yaml'}:{problem.line}: not valid")


def test_missing_required_field_of_a_send_step(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("    template: welcome_sms\n", "")
    problem = only_problem(tmp_path, text, templates)
    assert problem.field == "steps[1].template"
    assert problem.line == line_of(text, "- id: welcome_sms")
    assert problem.message == "step 2 ('welcome_sms') needs `template:` (a send step)"
    assert str(problem) == (
        f"{tmp_path / 'bad_journey.yaml'}:{problem.line}: steps[1].template: "
        "step 2 ('welcome_sms') needs `template:` (a send step)"
    )


def test_every_problem_in_a_file_is_reported(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("duration: 4d", "duration: 4x").replace("channel: push", "channel: fax")
    problems = problems_of(tmp_path, text, templates)
    assert [(p.line, p.field) for p in problems] == [
        (line_of(text, "channel: fax"), "steps[3].channel"),
        (line_of(text, "duration: 4x"), "steps[4].duration"),
    ]


@pytest.mark.parametrize("text", ["", "- id: a\n- id: b\n", "just words\n"])
def test_a_journey_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(text)
    with pytest.raises(JourneyError) as caught:
        load_journey(path)
    assert str(caught.value) == f"{path}:1: a journey is a YAML mapping (id, name, ...)"


def test_unreadable_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(JourneyError) as caught:
        load_journey(missing)
    assert str(caught.value).startswith(f"{missing}: cannot read")


def test_absurdly_long_duration_is_a_problem_not_a_crash(
    tmp_path: Path, templates: TemplateRenderer
) -> None:
    text = edited("duration: 4d", "duration: 99999999999d")
    problem = only_problem(tmp_path, text, templates)
    assert (problem.line, problem.field) == (line_of(text, "99999999999d"), "steps[4].duration")


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("45s", timedelta(seconds=45)),
        ("14d", timedelta(days=14)),
    ],
)
def test_durations_round_trip(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert format_duration(expected) == text


@pytest.mark.parametrize(
    ("text", "expected", "shortest"),
    [("90m", timedelta(minutes=90), "1h30m"), ("1w", timedelta(days=7), "7d"), ("2D", None, "2d")],
)
def test_durations_are_written_back_in_their_shortest_form(
    text: str, expected: timedelta | None, shortest: str
) -> None:
    value = parse_duration(text)
    if expected is not None:
        assert value == expected
    assert format_duration(value) == shortest
    assert parse_duration(shortest) == value


@pytest.mark.parametrize("value", ["", "2", "d2", "2x", "1h 30m", "-2d", 5, 2.5, None])
def test_malformed_durations_are_refused_with_an_example(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert "'30m'" in str(caught.value) and "'2d'" in str(caught.value)
    assert repr(value) in str(caught.value)


def test_zero_duration_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_duration("0d")


# --- the model as Temporal carries it -----------------------------------------------------

VARIED = """\
id: win_back
name: Win back lapsed buyers
trigger: {event: cart_abandoned}
exit_on: [account_deleted, unsubscribed]
holdout: 12.5
steps:
  - {id: coupon, type: issue_coupon, amount: 5.5, min_spend: 49.90, valid_for: 1h30m}
  - {id: nudge, type: send, channel: sms, template: welcome_sms, topic: transactional}
  - {id: pause, type: wait, duration: 36h}
  - {id: stop, type: exit}
"""


@pytest.mark.parametrize("text", [JOURNEY, VARIED], ids=["new_user_coupon", "win_back"])
def test_journey_round_trips_through_json(text: str) -> None:
    journey = parse_journey(text)
    dumped = journey.model_dump(mode="json")
    assert Journey.model_validate(dumped) == journey

    payloads = pydantic_data_converter.payload_converter.to_payloads([journey])
    (back,) = pydantic_data_converter.payload_converter.from_payloads(payloads, [Journey])
    assert back == journey


def test_json_form_keeps_money_exact_and_durations_readable() -> None:
    dumped = parse_journey(VARIED).model_dump(mode="json")
    coupon, _, pause, _ = dumped["steps"]
    assert Decimal(coupon["min_spend"]) == Decimal("49.90")
    assert coupon["valid_for"] == "1h30m"
    assert pause["duration"] == "1d12h"


def test_steps_after_an_exit_are_unreachable(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("  - id: wait_day2\n", "  - id: stop_here\n    type: exit\n  - id: wait_day2\n")
    problem = only_problem(tmp_path, text, templates)
    assert problem.field == "steps[3]"
    assert "unreachable" in problem.message and "wait_day2" in problem.message
    assert problem.line == line_of(text, "- id: wait_day2")


def test_unknown_event_and_property_are_named(tmp_path: Path, templates: TemplateRenderer) -> None:
    text = edited("event: user_signed_up", "event: user_signedup")
    problem = only_problem(tmp_path, text, templates)
    assert (problem.field, problem.line) == ("trigger.event", line_of(text, "user_signedup"))
    assert "unknown event 'user_signedup'" in problem.message


# --- schedule triggers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "field", "message"),
    [
        (
            '  schedule: {cron: "0 25 * * *", audience: dormant_30d}',
            "trigger.schedule.cron",
            "higher than the maximum",
        ),
        (
            '  schedule: {cron: "0 10 * * *", timezone: Asia/Shanghia, audience: dormant_30d}',
            "trigger.schedule.timezone",
            "unknown timezone 'Asia/Shanghia'",
        ),
        (
            # Not even a name an audience could be saved as (one that could is a warning
            # until publishing looks it up: tests/journeys/test_schedule_saved_audience.py).
            '  schedule: {cron: "0 10 * * *", audience: Dormant-31d}',
            "trigger.schedule.audience",
            "unknown audience 'Dormant-31d'; shipped: cart_abandoners",
        ),
        (
            '  schedule: {cron: "0 10 * * *", audience: {trait: tier, op: eq}}',
            "trigger.schedule.audience",
            "trigger.schedule.audience: rule",
        ),
    ],
)
def test_schedule_problems_name_the_field_and_line(
    tmp_path: Path, templates: TemplateRenderer, schedule: str, field: str, message: str
) -> None:
    text = edited("  event: user_signed_up", schedule)
    problem = only_problem(tmp_path, text, templates)
    assert problem.field == field
    assert problem.line == line_of(text, "schedule:")
    assert message in problem.message
