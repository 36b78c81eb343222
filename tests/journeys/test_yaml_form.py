"""Journeys written back as YAML, and as form rows: every shipped journey survives the round
trip (the same journey; a second write is the same text), and the builder's edits (add each
step type, edit a field, move, delete, nest in a branch) give the journey expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from journeys.models import STEP_TYPES
from journeys.problems import JourneyError
from journeys.validate import parse_journey, shipped_journey_files
from journeys.yaml_form import (
    FormError,
    add_step,
    delete_step,
    from_form,
    move_step,
    settings_of,
    steps_of,
    to_rows,
)
from journeys.yaml_write import dump_journey, leading_comments

SHIPPED = shipped_journey_files()


def written(text: str) -> str:
    return dump_journey(yaml.safe_load(text), header=leading_comments(text))


def through_rows(data: dict[str, Any]) -> dict[str, Any]:
    return from_form(settings_of(data), to_rows(steps_of(data)))


def shipped(stem: str) -> dict[str, Any]:
    path = next(p for p in SHIPPED if p.stem == stem)
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_journey_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = written(text)
    assert parse_journey(once) == parse_journey(text)
    assert written(once) == once  # idempotent
    # Through the builder's rows and back: the same data, so the same text.
    assert through_rows(yaml.safe_load(text)) == yaml.safe_load(text)
    assert dump_journey(through_rows(yaml.safe_load(once)), header=leading_comments(once)) == once
    # Only end-of-line comments are lost: the lines are the file's, less those comments.
    assert once.splitlines() == [line.split("  #")[0].rstrip() for line in text.splitlines()]


def test_style_quotes_only_where_needed_and_keeps_model_key_order() -> None:
    data = {
        "steps": [{"type": "wait", "duration": "1d", "id": "w"}],
        "trigger": {"schedule": {"audience": "a", "cron": "0 10 * * *"}},
        "name": "yes",
        "id": "j",
        "goal": {"within": "7d", "event": ["a", "b"], "where": {"total": {"gte": 50}}},
        "description": "满50减20: 新人",
        "typo": {"x": 1},
    }
    assert dump_journey(data) == (
        "id: j\n"
        'name: "yes"\n'
        'description: "满50减20: 新人"\n'
        "trigger:\n"
        "  schedule:\n"
        '    cron: "0 10 * * *"\n'
        "    audience: a\n"
        "goal:\n"
        "  event: [a, b]\n"
        "  within: 7d\n"
        "  where: {total: {gte: 50}}\n"
        "steps:\n"
        "  - id: w\n"
        "    type: wait\n"
        "    duration: 1d\n"
        "typo: {x: 1}\n"
    )
    assert yaml.safe_load(dump_journey(data)) == data


def test_odd_values_survive_the_rows() -> None:
    data = shipped("new_user_coupon")
    data["steps"][0]["amount"] = "twenty"  # a string where a number belongs
    data["steps"][1]["tempalte"] = "x"  # a typo
    data["steps"][2]["duration"] = 60  # a number where a string belongs
    data["steps"].append("exit")  # not a mapping
    data["trigger"]["unknown"] = {"deep": [1, 2]}
    data["re_entry"] = {"after": "30d", "also": 1}
    assert through_rows(data) == data
    rows = to_rows(steps_of(data))
    assert rows[1].get("more") == "{tempalte: x}"
    assert rows[2].get("more") == "{duration: 60}"


def edited(stem: str, edit: Any) -> dict[str, Any]:
    data = shipped(stem)
    settings, rows = settings_of(data), to_rows(steps_of(data))
    edit(settings, rows)
    return from_form(settings, rows)


def test_editing_fields_changes_the_journey() -> None:
    def edit(settings: dict[str, str], rows: list[Any]) -> None:
        settings["holdout"] = "20"
        settings["goal.event"] = "[order_placed, coupon_redeemed]"
        settings["delivery.quiet_hours"] = "22:00-08:00"
        settings["re_entry"] = "after"
        settings["re_entry.after"] = "60d"
        rows[1].fields["template"] = "other_sms"
        rows[1].fields["fallback"] = "push"
        rows[1].fields["fallback_template"] = "other_push"

    journey = parse_journey(dump_journey(edited("new_user_coupon", edit)))
    assert journey.holdout == 20
    assert journey.goal is not None and journey.goal.events() == ["order_placed", "coupon_redeemed"]
    assert journey.delivery.quiet_hours == "22:00-08:00"
    assert journey.re_entry.after.days == 60  # type: ignore[union-attr]
    send = journey.steps[1]
    assert send.type == "send" and send.template == "other_sms" and send.fallback == "push"


def test_a_branch_condition_as_context_or_audience() -> None:
    def to_audience(settings: dict[str, str], rows: list[Any]) -> None:
        rows[3].fields |= {"condition": "audience", "audience": "{tag: vip}"}

    data = edited("cart_abandonment", to_audience)
    assert data["steps"][3]["if"] == {"audience": {"tag": "vip"}}

    def to_gte(settings: dict[str, str], rows: list[Any]) -> None:
        rows[3].fields |= {"context": "trigger.properties.total_fen", "op": "gte", "value": "5000"}

    data = edited("cart_abandonment", to_gte)
    assert data["steps"][3]["if"] == {"context": "trigger.properties.total_fen", "gte": 5000}


def test_a_field_that_is_not_yaml_is_named() -> None:
    data = shipped("new_user_coupon")
    rows = to_rows(steps_of(data))
    rows[0].fields["amount"] = "[20"
    with pytest.raises(FormError) as caught:
        from_form(settings_of(data), rows)
    assert caught.value.field == "steps[0].amount"


@pytest.mark.parametrize("kind", STEP_TYPES)
def test_add_each_step_type(kind: str) -> None:
    data = shipped("new_user_coupon")
    path = add_step(data, "steps", 2, kind)
    assert path == "steps[2]"
    added = data["steps"][2]
    assert added["type"] == kind and added["id"] == f"{kind}_1"
    # Through the form and back, it is the same step; it parses, or its problem names it.
    assert through_rows(data) == data
    try:
        journey = parse_journey(dump_journey(data))
    except JourneyError as exc:
        assert kind in ("branch", "wait_for", "send")  # they need a field the form asks for
        assert all(p.field.startswith("steps[2]") for p in exc.problems), exc.problems
    else:
        assert journey.steps[2].type == kind


def test_move_delete_and_nest_in_a_branch() -> None:
    data = shipped("cart_abandonment")
    assert move_step(data, "steps[1]", -1) == "steps[0]"
    assert [s["id"] for s in data["steps"][:2]] == ["reminder_push", "wait_1h"]
    assert move_step(data, "steps[0]", -1) == "steps[0]"  # already first
    assert add_step(data, "steps[3].then", 0, "wait") == "steps[3].then[0]"
    assert add_step(data, "steps[3].else", 9, "exit") == "steps[3].else[2]"
    assert move_step(data, "steps[3].else[2]", -1) == "steps[3].else[1]"
    delete_step(data, "steps[3].then[1]")
    journey = parse_journey(dump_journey(data))
    branch = journey.steps[3]
    assert branch.type == "branch"
    assert [s.id for s in branch.then] == ["wait_1"]
    assert [s.id for s in branch.else_] == ["cart_coupon", "exit_1", "coupon_sms"]
    # A branch built from nothing: add it, then steps into its then and else.
    data = shipped("new_user_coupon")
    add_step(data, "steps", 6, "branch")
    data["steps"][6]["if"] = {"context": "trigger.properties.channel", "eq": "app"}
    add_step(data, "steps[6].then", 0, "send")
    data["steps"][6]["then"][0]["template"] = "new_user_reminder_push"
    add_step(data, "steps[6].else", 0, "exit")
    assert through_rows(data) == data
    built = parse_journey(dump_journey(data)).steps[6]
    assert built.type == "branch"
    assert [s.type for s in built.then] == ["send"] and [s.type for s in built.else_] == ["exit"]
    with pytest.raises(ValueError, match="no step"):
        delete_step(data, "steps[40]")
    with pytest.raises(ValueError, match="no list"):
        add_step(data, "steps[0].then", 0, "exit")


def test_anything_loaded_is_written_back_as_loaded() -> None:
    odd: dict[str, Any] = {
        "id": "x",
        "entry": {"all": [{"tag": "vip"}, {"not": {"tier": {"in": ["金卡", "银卡"]}}}, [[1]], []]},
        "steps": [
            {"id": "b", "type": "branch", "if": {"audience": {"tag": "vip"}}, "then": []},
            "oops",
            {"id": "s", "type": "sned", "then": [{"x": {"y": "a: b"}}]},
            {"text": "line1\nline2", "n": None, "f": 1.5, "d": "2025-01-01", "k": "null"},
            {"e": "", "q": "it's # x", "date": yaml.safe_load("2025-01-01")},
        ],
    }
    out = dump_journey(odd)
    expected = {**odd, "steps": [{k: v for k, v in odd["steps"][0].items() if k != "then"}]}
    expected["steps"] += odd["steps"][1:]
    assert yaml.safe_load(out) == expected  # only the empty `then` is left out
    assert dump_journey(yaml.safe_load(out)) == out
    assert through_rows(expected) == expected
