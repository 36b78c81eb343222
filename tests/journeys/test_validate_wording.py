"""Journey validation in the marketer's words: the file, the step (number and id), the field,
and what would have been accepted, never pydantic's own phrasing."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeys.models import STEP_TYPES
from journeys.validate import JourneyError, Problem, load_journey

HEAD = """\
id: welcome
name: Welcome
trigger:
  event: user_signed_up
steps:
  - id: hello
    type: send
    channel: sms
    template: welcome_sms
"""


def problems(tmp_path: Path, steps: str) -> list[Problem]:
    path = tmp_path / "welcome.yaml"
    path.write_text(HEAD + steps, encoding="utf-8")
    with pytest.raises(JourneyError) as caught:
        load_journey(path)
    for problem in caught.value.problems:
        assert str(problem).startswith(f"{path}:")  # every problem names its file
    return caught.value.problems


def only(tmp_path: Path, steps: str) -> Problem:
    (problem,) = problems(tmp_path, steps)
    return problem


def test_a_step_without_a_type_lists_the_step_types(tmp_path: Path) -> None:
    problem = only(tmp_path, "  - id: pause\n    duration: 2d\n")
    assert problem.field == "steps[1]"
    assert problem.message == (
        f"step 2 ('pause') has no `type:`; expected one of {', '.join(STEP_TYPES)}"
    )
    assert "discriminator" not in str(problem)


def test_an_unknown_type_names_the_valid_ones_and_the_closest(tmp_path: Path) -> None:
    problem = only(tmp_path, "  - id: pause\n    type: wiat\n    duration: 2d\n")
    assert problem.message.startswith("step 2 ('pause') has `type: wiat`, which is not a step")
    assert all(kind in problem.message for kind in STEP_TYPES)
    assert problem.message.endswith("did you mean `type: wait`?")
    assert "Input tag" not in problem.message


def test_a_missing_field_names_the_step_and_the_field(tmp_path: Path) -> None:
    problem = only(tmp_path, "  - id: pause\n    type: wait\n")
    assert problem.field == "steps[1].duration"
    assert problem.message == "step 2 ('pause') needs `duration:` (a wait step)"


def test_a_wrong_value_says_what_was_written_and_what_would_do(tmp_path: Path) -> None:
    problem = only(tmp_path, "  - id: nudge\n    type: send\n    channel: fax\n    template: x\n")
    assert problem.field == "steps[1].channel"
    assert problem.message == (
        "step 2 ('nudge'), field `channel` is 'fax'; it should be 'sms', 'email' or 'push'"
    )


def test_a_wrong_type_of_value_names_the_field(tmp_path: Path) -> None:
    problem = only(tmp_path, "  - id: pause\n    type: wait\n    duration: [2d]\n")
    assert problem.field == "steps[1].duration"
    assert problem.message.startswith("step 2 ('pause'), field `duration`")
    assert "['2d']" in problem.message


def test_an_extra_field_lists_what_the_step_takes(tmp_path: Path) -> None:
    problem = only(tmp_path, "  - id: pause\n    type: wait\n    duration: 2d\n    colour: red\n")
    assert problem.field == "steps[1].colour"
    assert problem.message == (
        "step 2 ('pause') has `colour:`, which a wait step does not take; "
        "it takes id, type, duration"
    )


def test_a_nested_step_is_named_inside_its_parent(tmp_path: Path) -> None:
    steps = (
        "  - id: check\n    type: branch\n    if: {context: trigger.properties.vip, eq: true}\n"
        "    then:\n      - id: vip_sms\n        channel: sms\n        template: welcome_sms\n"
    )
    problem = only(tmp_path, steps)
    assert problem.field == "steps[1].then[0]"
    assert problem.message.startswith(
        "step 2 ('check'), then step 1 ('vip_sms') has no `type:`; expected one of send"
    )


def test_a_step_that_is_not_a_mapping(tmp_path: Path) -> None:
    problem = only(tmp_path, "  - wait 2 days\n")
    assert problem.message == (
        "step 2 is 'wait 2 days', not a step: write it as a mapping with `id:` and `type:`"
    )


def test_a_field_needed_only_with_another_says_so(tmp_path: Path) -> None:
    steps = "  - id: nudge\n    type: send\n    channel: push\n    template: x\n    fallback: sms\n"
    problem = only(tmp_path, steps)
    assert problem.field == "steps[1].fallback_template"
    assert problem.message == (
        "step 2 ('nudge') needs `fallback_template:` when `fallback` is given (a send step)"
    )
