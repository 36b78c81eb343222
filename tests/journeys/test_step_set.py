"""The step set is closed: each step type says which lists of steps it holds, and every walk
over a journey (validation, the diagram, the interpreter) asks it, so a nested step is never
missed."""

from __future__ import annotations

from typing import get_args

from journeys.models import STEP_LIST_KEYS, STEP_MODELS, Step, walk
from journeys.validate import parse_journey

NESTED = """\
id: nested
name: Nested
trigger: {event: user_signed_up}
steps:
  - id: wait_order
    type: wait_for
    event: order_completed
    timeout: 1d
    on_event:
      - id: big
        type: branch
        if: {context: trigger.event, eq: user_signed_up}
        then: [{id: thanks, type: wait, duration: 1h}]
        else: [{id: done, type: exit}]
    on_timeout: [{id: nudge, type: wait, duration: 2h}]
  - {id: last, type: wait, duration: 1h}
"""


def test_every_field_holding_steps_is_a_nested_list_of_its_type():
    for model in STEP_MODELS:
        holding_steps = {
            name
            for name, info in model.model_fields.items()
            if get_args(info.annotation) == (Step,)
        }
        assert holding_steps == {name for _, name in model.NESTED}, model.__name__
        for key, name in model.NESTED:
            assert (model.model_fields[name].alias or name) == key


def test_walk_visits_nested_steps_in_document_order():
    journey = parse_journey(NESTED)
    assert [s.id for s in walk(journey.steps)] == [
        "wait_order",
        "big",
        "thanks",
        "done",
        "nudge",
        "last",
    ]
    wait_order, big = journey.steps[0], journey.steps[0].children()[0]
    assert [key for key, _ in wait_order.child_lists()] == ["on_event", "on_timeout"]
    assert [key for key, _ in big.child_lists()] == ["then", "else"]
    assert journey.steps[1].child_lists() == []


def test_the_keys_of_step_lists_are_those_a_journey_file_uses():
    assert STEP_LIST_KEYS == ("steps", "on_event", "on_timeout", "then", "else")
