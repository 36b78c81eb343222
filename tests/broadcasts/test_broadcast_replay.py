"""Broadcasts begun by earlier versions still replay: a worker upgraded in the middle of a
page finishes that page as it was begun.

``histories/broadcast_per_send_before_batches.json`` was recorded from the version before
batches (three SMS sent, one recipient without a phone skipped, all in one page), one
``send_message`` per recipient; ``histories/broadcast_batches_before_wider_window.json`` from
the version that kept 200 sends (ten batches of 20) in flight (250 SMS in one page)."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, sandbox_runner

HISTORIES = Path(__file__).parent / "histories"
HISTORY = HISTORIES / "broadcast_per_send_before_batches.json"
TEN_BATCHES = HISTORIES / "broadcast_batches_before_wider_window.json"


def activities_scheduled(history: dict) -> list[str]:
    return [
        event["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for event in history["events"]
        if "activityTaskScheduledEventAttributes" in event
    ]


async def test_a_page_begun_one_send_at_a_time_replays_on_the_batching_workflow():
    text = HISTORY.read_text()
    # The recording is what it says: one send_message per ready recipient, no batches.
    assert activities_scheduled(json.loads(text)) == [
        "record_broadcast",
        "broadcast_page",
        "send_message",
        "send_message",
        "send_message",
        "record_broadcast",
        "record_broadcast",
    ]
    await replays(text)


def batches_before_first_done(history: dict) -> int:
    """How many ``send_batch`` were scheduled before the first of them completed."""
    batches: set[int] = set()
    for event in history["events"]:
        scheduled = event.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == "send_batch":
            batches.add(int(event["eventId"]))
        done = event.get("activityTaskCompletedEventAttributes")
        if done and int(done["scheduledEventId"]) in batches:
            break
    return len(batches)


async def test_a_page_begun_with_ten_batches_in_flight_replays_with_more_allowed():
    text = TEN_BATCHES.read_text()
    # The recording is what it says: 13 batches for 250 sends, ten of them in flight at once.
    history = json.loads(text)
    assert activities_scheduled(history).count("send_batch") == 13
    assert batches_before_first_done(history) == 10
    await replays(text)


async def replays(text: str) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json("broadcast", text), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure
