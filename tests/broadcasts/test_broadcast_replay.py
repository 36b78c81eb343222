"""A broadcast begun before sends went out in batches still replays: a worker upgraded in the
middle of a page finishes that page one ``send_message`` per recipient, as it was begun.

``histories/broadcast_per_send_before_batches.json`` was recorded from that earlier version
(three SMS sent, one recipient without a phone skipped, all in one page)."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, sandbox_runner

HISTORY = Path(__file__).parent / "histories" / "broadcast_per_send_before_batches.json"


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
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json("broadcast", text), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure
