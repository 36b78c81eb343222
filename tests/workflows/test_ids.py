"""Workflow ids are built in one module, and the sweep's tick reads as the schedule labels it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from journeys.schedule import tick_label
from workflows.ids import broadcast_workflow_id, journey_workflow_id, sweep_workflow_id


def test_journey_ids_encode_each_part_and_count_entries_after_the_first():
    assert journey_workflow_id("new_user_coupon", "u1") == "journey:new_user_coupon:u1"
    assert journey_workflow_id("cart", "a:b", "c/1", 2) == "journey:cart:a%3Ab:c%2F1:2"


def test_a_sweep_id_names_the_tick_as_the_schedule_does():
    tick = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    assert sweep_workflow_id("win:back", tick) == f"sweep:win%3Aback:{tick_label(tick)}"
    assert sweep_workflow_id("winback", tick) == "sweep:winback:2026-11-25T02:00:00Z"


def test_a_broadcast_id_is_its_row():
    assert broadcast_workflow_id(42) == "broadcast:42"
